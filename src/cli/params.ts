// Parameter specifications and the argument types derived from them.
// Pure types plus the common parameters every cmdlet takes. No dependencies.

interface ParamBase {
  /** Other names, e.g. ['VMName'] for -Name on VM-level cmdlets. Matched like the name (case-insensitive, by prefix). */
  readonly aliases?: readonly string[];
  /** true: mandatory in every set the parameter belongs to; a list: mandatory only in those sets. */
  readonly mandatory?: boolean | readonly string[];
  /** The parameter sets this parameter belongs to; absent means all sets. */
  readonly sets?: readonly string[];
  /** One line for help. */
  readonly help?: string;
}

export type ParamSpec =
  | (ParamBase & { readonly type: 'string'; readonly array?: boolean; readonly wildcards?: boolean })
  | (ParamBase & { readonly type: 'int'; readonly array?: boolean; readonly min?: number; readonly max?: number; readonly values?: readonly number[] })
  | (ParamBase & { readonly type: 'size'; readonly array?: boolean; readonly min?: number; readonly max?: number })
  | (ParamBase & { readonly type: 'enum'; readonly array?: boolean; readonly values: readonly string[] })
  | (ParamBase & { readonly type: 'guid'; readonly array?: boolean })
  | (ParamBase & { readonly type: 'bool' })
  | (ParamBase & { readonly type: 'switch' });

export type ParamType = ParamSpec['type'];
export type Params = Readonly<Record<string, ParamSpec>>;

type Scalar<P> =
  P extends { type: 'string' | 'guid' } ? string
  : P extends { type: 'int' | 'size' } ? number
  : P extends { type: 'bool' | 'switch' } ? boolean
  : P extends { type: 'enum'; values: readonly (infer V)[] } ? V
  : never;

/** The bound value of one parameter: arrays for `array: true`. */
export type ParamValue<P> = P extends { array: true } ? Scalar<P>[] : Scalar<P>;

type RequiredKeys<Ps extends Params> = {
  [K in keyof Ps]: Ps[K] extends { type: 'switch' } ? K
    : Ps[K] extends { mandatory: true } ? (Ps[K] extends { sets: readonly string[] } ? never : K)
    : never;
}[keyof Ps];

/** The common parameters, bound on every cmdlet. */
export const COMMON_PARAMS = {
  ComputerName: { type: 'string', array: true, aliases: ['CN'], help: 'Host(s) to run on (default: localhost)' },
  Json: { type: 'switch', help: 'Write the output as JSON' },
  PassThru: { type: 'switch', help: 'Write the affected object(s) to the output' },
  Verbose: { type: 'switch', aliases: ['vb'], help: 'Write progress messages to stderr' },
} as const satisfies Params;

/** Added to the common parameters of a cmdlet that changes something (`supportsShouldProcess`). */
export const SHOULD_PROCESS_PARAMS = {
  WhatIf: { type: 'switch', aliases: ['wi'], help: 'Say what would be done, to which objects, without doing it' },
} as const satisfies Params;

export interface CommonArgs {
  ComputerName?: string[];
  Json: boolean;
  PassThru: boolean;
  Verbose: boolean;
}

/**
 * Arguments handed to a cmdlet's `run`: switches are always booleans (false when absent), parameters
 * marked `mandatory: true` outside parameter sets are always present, everything else may be undefined.
 */
export type Args<Ps extends Params> =
  { [K in RequiredKeys<Ps>]: ParamValue<Ps[K]> }
  & { [K in Exclude<keyof Ps, RequiredKeys<Ps>>]?: ParamValue<Ps[K]> }
  & CommonArgs;

/** The type word help shows for a parameter, e.g. `<String[]>`, `<Size>`, `{IDE | SCSI}`. */
export function typeLabel(p: ParamSpec): string {
  const arr = 'array' in p && p.array ? '[]' : '';
  switch (p.type) {
    case 'string': return `<String${arr}>`;
    case 'int': return p.values ? `{${p.values.join(' | ')}}` : `<Int${arr}>`;
    case 'size': return `<Size${arr}>`;
    case 'enum': return `{${p.values.join(' | ')}}${arr}`;
    case 'guid': return `<Guid${arr}>`;
    case 'bool': return '<Boolean>';
    case 'switch': return '';
  }
}
