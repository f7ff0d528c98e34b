// PowerShell `-like` wildcards: `*` any run, `?` one character, `[abc]` / `[a-c]` one of a set,
// a backtick escapes the next character. Always case-insensitive, always matching the whole string.
// Pure; depends on common/errors only.
import { VmhostError } from '../common/index.ts';

/** True when the text contains an unescaped wildcard character (`*`, `?` or `[`). */
export function hasWildcard(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '`') { i++; continue; }
    if (c === '*' || c === '?' || c === '[') return true;
  }
  return false;
}

const cache = new Map<string, RegExp>();

/** Compiles a pattern; throws CLI_INVALID_PARAMETER for an unclosed `[`. */
export function wildcardToRegExp(pattern: string): RegExp {
  const hit = cache.get(pattern);
  if (hit) return hit;
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '`' && i + 1 < pattern.length) re += escapeRe(pattern[++i]!);
    else if (c === '*') re += '[\\s\\S]*';
    else if (c === '?') re += '[\\s\\S]';
    else if (c === '[') {
      const end = findClose(pattern, i + 1);
      if (end < 0) {
        throw new VmhostError('CLI_INVALID_PARAMETER', `the wildcard pattern '${pattern}' is not valid (unclosed '[')`, { pattern });
      }
      re += `[${classBody(pattern.slice(i + 1, end))}]`;
      i = end;
    } else re += escapeRe(c);
  }
  const compiled = new RegExp(`^${re}$`, 'iu');
  if (cache.size > 256) cache.clear();
  cache.set(pattern, compiled);
  return compiled;
}

/** `-like`: does the text match the pattern (case-insensitive)? */
export function matchWildcard(pattern: string, text: string): boolean {
  return wildcardToRegExp(pattern).test(text);
}

/** True when the text matches at least one of the patterns (literal names match themselves, case-insensitively). */
export function matchesAny(patterns: readonly string[], text: string): boolean {
  return patterns.some((p) => matchWildcard(p, text));
}

function findClose(p: string, from: number): number {
  for (let j = from; j < p.length; j++) {
    if (p[j] === '`') { j++; continue; }
    if (p[j] === ']' && j > from) return j; // `[]]` style: a ']' right after '[' is literal
  }
  return -1;
}

function classBody(body: string): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === '`' && i + 1 < body.length) out += escapeClass(body[++i]!);
    else if (c === '-' && out !== '' && i + 1 < body.length) out += '-'; // a range a-c
    else out += escapeClass(c);
  }
  return out;
}

function escapeRe(c: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(c) ? `\\${c}` : c;
}

function escapeClass(c: string): string {
  return /[\\\]^[-]/.test(c) ? `\\${c}` : c;
}
