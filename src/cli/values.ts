// Converts one raw argument (a string from the shell) into the parameter's typed value.
// Throws CLI_INVALID_PARAMETER with a one-line message naming the parameter.
// Depends on: errors, params, size, wildcard.
import { cliError, CliErrorCode } from './errors.ts';
import type { ParamSpec } from './params.ts';
import { parseSize } from './size.ts';
import { wildcardToRegExp } from './wildcard.ts';

const GUID = /^\{?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\}?$/i;

/** $true/$false/true/false/1/0 (case-insensitive); undefined for anything else. */
export function parseBool(text: string): boolean | undefined {
  switch (text.toLowerCase()) {
    case '$true': case 'true': case '1': return true;
    case '$false': case 'false': case '0': return false;
    default: return undefined;
  }
}

export function convertValue(cmdlet: string, name: string, spec: ParamSpec, raw: string): unknown {
  const bad = (why: string) =>
    cliError(CliErrorCode.invalidParameter, cmdlet, `parameter -${name}: ${why}`, { parameter: name, value: raw });
  if ('array' in spec && spec.array) {
    const items = raw.split(',').map((s) => s.trim());
    if (items.some((s) => s === '')) throw bad(`'${raw}' has an empty list item`);
    return items.map((item) => convertScalar(spec, item, bad));
  }
  return convertScalar(spec, raw, bad);
}

function convertScalar(spec: ParamSpec, text: string, bad: (why: string) => Error): unknown {
  switch (spec.type) {
    case 'string':
      if (spec.wildcards) {
        try { wildcardToRegExp(text); } catch { throw bad(`'${text}' is not a valid wildcard pattern (unclosed '[')`); }
      }
      return text;
    case 'int': {
      if (!/^[+-]?\d+$/.test(text.trim()) || !Number.isSafeInteger(Number(text))) throw bad(`'${text}' is not an integer`);
      const n = Number(text);
      if (spec.values && !spec.values.includes(n)) throw bad(`'${text}' is not one of ${spec.values.join(', ')}`);
      checkRange(n, spec.min, spec.max, text, bad);
      return n;
    }
    case 'size': {
      const n = parseSize(text);
      if (n === undefined) throw bad(`'${text}' is not a size (use e.g. 512MB, 1GB)`);
      checkRange(n, spec.min, spec.max, text, bad);
      return n;
    }
    case 'enum': {
      const hit = spec.values.find((v) => v.toLowerCase() === text.toLowerCase());
      if (hit === undefined) throw bad(`'${text}' is not one of ${spec.values.join(', ')}`);
      return hit;
    }
    case 'guid': {
      const m = GUID.exec(text.trim());
      if (!m) throw bad(`'${text}' is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)`);
      return m[1]!.toLowerCase();
    }
    case 'bool':
    case 'switch': {
      const b = parseBool(text);
      if (b === undefined) throw bad(`'${text}' is not a boolean (use $true, $false, true, false, 1 or 0)`);
      return b;
    }
  }
}

function checkRange(n: number, min: number | undefined, max: number | undefined, text: string, bad: (why: string) => Error): void {
  if ((min !== undefined && n < min) || (max !== undefined && n > max)) {
    const range = min !== undefined && max !== undefined ? `${min} to ${max}` : min !== undefined ? `at least ${min}` : `at most ${max}`;
    throw bad(`'${text}' is out of range (${range})`);
  }
}
