// Binds command-line words to a cmdlet's parameters the way PowerShell does:
//   -Name value   -Name:value   -Switch   -Switch:$false   -Name a,b,c   -Name a, b   bare words by position
// Names are case-insensitive and may be any unique prefix of a name or alias; `--` ends parameter names.
// Then resolves the parameter set and checks mandatory parameters.
// Depends on: errors, params, values, suggest, cmdlet (types).
import type { AnyCmdletDef } from './cmdlet.ts';
import { cliError, CliErrorCode } from './errors.ts';
import { COMMON_PARAMS, SHOULD_PROCESS_PARAMS, typeLabel, type ParamSpec, type Params } from './params.ts';
import { closest } from './suggest.ts';
import { convertValue } from './values.ts';

export interface Bound {
  /** Canonical parameter name → typed value; switches absent from the command line are false. */
  readonly args: Record<string, unknown>;
  readonly parameterSet: string | undefined;
  /** Parameters given on the command line. */
  readonly bound: ReadonlySet<string>;
}

/** The cmdlet's own parameters followed by the common ones (and -WhatIf where it applies). */
export function allParams(def: AnyCmdletDef): Params {
  return { ...def.params, ...commonParams(def) };
}

export function commonParams(def: AnyCmdletDef): Params {
  return def.supportsShouldProcess ? { ...COMMON_PARAMS, ...SHOULD_PROCESS_PARAMS } : COMMON_PARAMS;
}

/** A word that names a parameter: `-` then a letter or `_` (so `-1` is a value). `-?` is handled by main. */
function isParamWord(w: string): boolean {
  return /^-[A-Za-z_]/.test(w);
}

/** Joins `a,` `b` and `a` `,b` into `a,b` (PowerShell's array syntax split by the shell at the spaces). */
export function joinCommaContinuations(words: readonly string[]): string[] {
  const out: string[] = [];
  for (const w of words) {
    const last = out.length - 1;
    if (last >= 0 && (out[last]!.endsWith(',') || (w.startsWith(',') && !isParamWord(out[last]!))) && !isParamWord(w)) {
      out[last] += w;
    } else out.push(w);
  }
  return out;
}

/** Finds the parameter a (possibly abbreviated) name means. */
export function resolveParamName(def: AnyCmdletDef, typed: string): string {
  const params = allParams(def);
  const lower = typed.toLowerCase();
  const namesOf = (n: string) => [n, ...(params[n]!.aliases ?? [])].map((s) => s.toLowerCase());
  const exact = Object.keys(params).filter((n) => namesOf(n).includes(lower));
  if (exact.length === 1) return exact[0]!;
  const prefixed = Object.keys(params).filter((n) => namesOf(n).some((a) => a.startsWith(lower)));
  if (prefixed.length === 1) return prefixed[0]!;
  if (prefixed.length > 1) {
    throw cliError(CliErrorCode.ambiguousParameter, def.name,
      `parameter name '${typed}' is ambiguous; possible matches: ${prefixed.map((n) => `-${n}`).join(', ')}`, { parameter: typed });
  }
  const all = Object.entries(params).flatMap(([n, p]) => [n, ...(p.aliases ?? [])]);
  const hint = closest(typed, all, 1);
  throw cliError(CliErrorCode.unknownParameter, def.name,
    `a parameter cannot be found that matches parameter name '${typed}'${hint.length ? ` (did you mean -${hint[0]}?)` : ''}`, { parameter: typed });
}

export function bindArguments(def: AnyCmdletDef, argv: readonly string[]): Bound {
  const params = allParams(def);
  const words = joinCommaContinuations(argv);
  const raw = new Map<string, unknown>();
  const bare: string[] = [];
  const set = (name: string, value: unknown) => {
    if (raw.has(name)) {
      throw cliError(CliErrorCode.invalidParameter, def.name, `parameter -${name} is specified more than once`, { parameter: name });
    }
    raw.set(name, value);
  };

  let endOfNames = false;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (!endOfNames && w === '--') { endOfNames = true; continue; }
    if (endOfNames || !isParamWord(w)) { bare.push(w); continue; }
    const colon = w.indexOf(':');
    const typed = colon < 0 ? w.slice(1) : w.slice(1, colon);
    const inline = colon < 0 ? undefined : w.slice(colon + 1);
    const name = resolveParamName(def, typed);
    const spec = params[name]!;
    if (spec.type === 'switch' && inline === undefined) { set(name, true); continue; }
    if ((spec.type === 'switch' || spec.type === 'bool') && inline === '') {
      throw cliError(CliErrorCode.invalidParameter, def.name,
        `parameter -${name}: no value after ':' (the shell expands an unquoted $false to nothing; write -${name}:false or -${name}:'$false')`, { parameter: name });
    }
    if (spec.type === 'switch') { set(name, convertValue(def.name, name, spec, inline!)); continue; }
    let value = inline;
    if (value === undefined || value === '') {
      const next = words[i + 1];
      if (next === undefined || (isParamWord(next) && !endOfNames)) {
        throw cliError(CliErrorCode.invalidParameter, def.name,
          `missing an argument for parameter -${name}; specify a value of type ${typeLabel(spec)}`, { parameter: name });
      }
      value = next;
      i++;
    }
    set(name, convertValue(def.name, name, spec, value));
  }

  const positional = (def.positional ?? []).filter((n) => !raw.has(n));
  for (const word of bare) {
    const name = positional.shift();
    if (name === undefined) {
      throw cliError(CliErrorCode.invalidParameter, def.name, `a positional parameter cannot be found that accepts argument '${word}'`, { value: word });
    }
    set(name, convertValue(def.name, name, params[name]!, word));
  }

  const bound = new Set(raw.keys());
  const parameterSet = resolveSet(def, params, bound);
  checkMandatory(def, params, bound, parameterSet);

  const args: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(params)) if (spec.type === 'switch') args[name] = false;
  for (const [name, value] of raw) args[name] = value;
  return { args, parameterSet, bound };
}

/** Every parameter set named by any parameter, in declaration order. */
export function parameterSets(def: AnyCmdletDef): string[] {
  const sets: string[] = [];
  for (const p of Object.values(def.params)) for (const s of p.sets ?? []) if (!sets.includes(s)) sets.push(s);
  return sets;
}

function inSet(spec: ParamSpec, set: string | undefined): boolean {
  return set === undefined || spec.sets === undefined || spec.sets.includes(set);
}

function isMandatory(spec: ParamSpec, set: string | undefined): boolean {
  if (spec.mandatory === true) return inSet(spec, set);
  if (Array.isArray(spec.mandatory)) return set !== undefined && spec.mandatory.includes(set);
  return false;
}

function resolveSet(def: AnyCmdletDef, params: Params, bound: ReadonlySet<string>): string | undefined {
  const sets = parameterSets(def);
  if (sets.length === 0) return undefined;
  const candidates = sets.filter((s) => [...bound].every((n) => inSet(params[n]!, s)));
  if (candidates.length === 1) return candidates[0];
  if (candidates.length === 0) {
    const names = Object.keys(params).filter((n) => bound.has(n) && params[n]!.sets !== undefined); // declaration order
    const clash = names.flatMap((a) => names.filter((b) => !params[a]!.sets!.some((s) => params[b]!.sets!.includes(s))).map((b) => [a, b] as const))[0];
    const what = clash ? `-${clash[0]} and -${clash[1]} cannot be used together` : `no parameter set accepts ${names.map((n) => `-${n}`).join(', ')}`;
    throw cliError(CliErrorCode.parameterSet, def.name, `parameter set cannot be resolved: ${what}`);
  }
  if (def.defaultSet !== undefined && candidates.includes(def.defaultSet)) return def.defaultSet;
  const complete = candidates.filter((s) => Object.entries(params).every(([n, p]) => !isMandatory(p, s) || bound.has(n)));
  if (complete.length === 1) return complete[0];
  throw cliError(CliErrorCode.parameterSet, def.name,
    `parameter set cannot be resolved: the parameters given fit ${candidates.join(', ')}; add a parameter that tells them apart`);
}

function checkMandatory(def: AnyCmdletDef, params: Params, bound: ReadonlySet<string>, set: string | undefined): void {
  const missing = Object.entries(params).filter(([n, p]) => isMandatory(p, set) && !bound.has(n)).map(([n]) => `-${n}`);
  if (missing.length > 0) {
    throw cliError(CliErrorCode.missingParameter, def.name,
      `missing mandatory parameter${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`, { parameter: missing.join(',') });
  }
}
