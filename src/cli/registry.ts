// The set of known cmdlets: case-insensitive lookup, wildcard listing, "did you mean", and a check of
// every definition when it is added (so a malformed definition fails at start-up, not when typed).
// Depends on: cmdlet, params, bind, errors, suggest, wildcard.
import { VmhostError } from '../common/index.ts';
import { commonParams, parameterSets } from './bind.ts';
import type { AnyCmdletDef } from './cmdlet.ts';
import { CliErrorCode } from './errors.ts';
import type { Params } from './params.ts';
import { closest } from './suggest.ts';
import { matchWildcard } from './wildcard.ts';


export class CmdletRegistry {
  readonly #byName = new Map<string, AnyCmdletDef>();

  constructor(defs: Iterable<AnyCmdletDef> = []) {
    for (const d of defs) this.add(d);
  }

  add(d: AnyCmdletDef): this {
    validateDefinition(d);
    const key = d.name.toLowerCase();
    if (this.#byName.has(key)) throw invalid(d, 'is registered twice');
    this.#byName.set(key, d);
    return this;
  }

  /** Case-insensitive exact lookup. */
  get(name: string): AnyCmdletDef | undefined {
    return this.#byName.get(name.toLowerCase());
  }

  /** All cmdlets sorted by name, or those whose name matches a wildcard pattern. */
  list(pattern?: string): AnyCmdletDef[] {
    return [...this.#byName.values()]
      .filter((d) => pattern === undefined || matchWildcard(pattern, d.name))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Names close to a mistyped one. */
  suggest(name: string): string[] {
    return closest(name, [...this.#byName.values()].map((d) => d.name));
  }
}

function invalid(def: AnyCmdletDef, what: string): VmhostError {
  return new VmhostError(CliErrorCode.invalidDefinition, `cmdlet definition ${def.name}: ${what}`, { cmdlet: def.name });
}

export function validateDefinition(def: AnyCmdletDef): void {
  if (!/^[A-Za-z]+-[A-Za-z0-9]+$/.test(def.name)) throw invalid(def, 'name must be Verb-Noun');
  const seen = new Map<string, string>();
  const common = commonParams(def);
  const all: Params = { ...common, ...def.params };
  for (const [name, spec] of Object.entries(all)) {
    if (name in common && name in def.params) throw invalid(def, `-${name} is a common parameter`);
    for (const n of [name, ...(spec.aliases ?? [])]) {
      const other = seen.get(n.toLowerCase());
      if (other !== undefined) throw invalid(def, `-${n} names both -${other} and -${name}`);
      seen.set(n.toLowerCase(), name);
    }
    if (spec.type === 'enum' && spec.values.length === 0) throw invalid(def, `-${name} has no enum values`);
  }
  const sets = parameterSets(def);
  for (const [name, spec] of Object.entries(def.params)) {
    if (Array.isArray(spec.mandatory) && spec.mandatory.some((s) => !sets.includes(s) || (spec.sets && !spec.sets.includes(s)))) {
      throw invalid(def, `-${name} is mandatory in a set it does not belong to`);
    }
  }
  for (const p of def.positional ?? []) {
    if (!(p in def.params)) throw invalid(def, `positional parameter -${p} is not defined`);
    if (def.params[p]!.type === 'switch') throw invalid(def, `switch -${p} cannot be positional`);
  }
  if (def.defaultSet !== undefined && !sets.includes(def.defaultSet)) throw invalid(def, `default set ${def.defaultSet} is not a parameter set`);
}
