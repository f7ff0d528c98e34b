// Get-Help text: the cmdlet list for `vmhost help`, and NAME / SYNOPSIS / SYNTAX / PARAMETERS for one
// cmdlet (`vmhost New-VM -?`, `vmhost help New-VM`). Pure; depends on cmdlet, params, bind.
import { commonParams, parameterSets } from './bind.ts';
import type { AnyCmdletDef } from './cmdlet.ts';
import { typeLabel, type ParamSpec } from './params.ts';

function mandatoryIn(spec: ParamSpec, set: string | undefined): boolean {
  if (spec.mandatory === true) return true;
  return Array.isArray(spec.mandatory) && set !== undefined && spec.mandatory.includes(set);
}

/** One syntax line, PowerShell style: `New-VHD [-Path] <String> -SizeBytes <Size> [-Fixed] [<CommonParameters>]`. */
export function syntaxLine(def: AnyCmdletDef, set?: string): string {
  const positional = def.positional ?? [];
  const names = Object.keys(def.params)
    .filter((n) => set === undefined || def.params[n]!.sets === undefined || def.params[n]!.sets!.includes(set))
    .sort((a, b) => rank(a) - rank(b));
  function rank(n: string): number {
    const i = positional.indexOf(n);
    return i < 0 ? positional.length : i;
  }
  const parts = names.map((n) => {
    const spec = def.params[n]!;
    const type = typeLabel(spec);
    const named = positional.includes(n) ? `[-${n}]` : `-${n}`;
    const body = type ? `${named} ${type}` : named;
    return mandatoryIn(spec, set) ? body : `[${body}]`;
  });
  return [def.name, ...parts, '[<CommonParameters>]'].join(' ');
}

/** Wraps a syntax line between parameters (never inside `[-Name <String>]`); continuation lines indented. */
export function wrapSyntax(line: string, width: number, indent = '    '): string[] {
  const parts = line.match(/\[[^\]]*(?:\[[^\]]*\][^\]]*)*\]|\S+ (?:<[^>]*>|\{[^}]*\}\S*)|\S+/g) ?? [];
  const lines: string[] = [];
  let cur = indent;
  for (const p of parts) {
    if (cur.trim() !== '' && cur.length + 1 + p.length > width) { lines.push(cur); cur = `${indent}    ${p}`; }
    else cur = cur.trim() === '' ? `${indent}${p}` : `${cur} ${p}`;
  }
  lines.push(cur);
  return lines;
}

export function formatHelp(def: AnyCmdletDef, width = 100): string {
  const sets = parameterSets(def);
  const syntax = (sets.length ? sets : [undefined]).flatMap((s, i) => [...(i > 0 ? [''] : []), ...wrapSyntax(syntaxLine(def, s), width)]);
  const params = Object.entries(def.params).map(([n, p]) => {
    const facts = [
      p.aliases?.length ? `aliases: ${p.aliases.map((a) => `-${a}`).join(', ')}` : '',
      (def.positional ?? []).includes(n) ? `position ${(def.positional ?? []).indexOf(n)}` : '',
      p.mandatory === true ? 'mandatory' : Array.isArray(p.mandatory) ? `mandatory in ${p.mandatory.join(', ')}` : '',
      p.type === 'string' && p.wildcards ? 'wildcards' : '',
    ].filter(Boolean);
    return `    -${n} ${typeLabel(p)}`.trimEnd() + '\n' +
      (p.help ? `        ${p.help}\n` : '') + (facts.length ? `        (${facts.join('; ')})\n` : '');
  });
  const common = Object.entries(commonParams(def)).map(([n, p]) => `    -${n} ${typeLabel(p)}`.trimEnd().padEnd(32) + p.help);
  return [
    'NAME', `    ${def.name}`, '',
    ...(def.synopsis ? ['SYNOPSIS', `    ${def.synopsis}`, ''] : []),
    'SYNTAX', ...syntax, '',
    ...(params.length ? ['PARAMETERS', params.join('\n').trimEnd(), ''] : []),
    'COMMON PARAMETERS', ...common, '',
  ].join('\n');
}

/** The cmdlet list: name and synopsis, one per line. */
export function formatCmdletList(defs: readonly AnyCmdletDef[]): string {
  const w = Math.max(4, ...defs.map((d) => d.name.length));
  return defs.map((d) => `${d.name.padEnd(w)}  ${d.synopsis ?? ''}`.trimEnd()).join('\n') + '\n';
}
