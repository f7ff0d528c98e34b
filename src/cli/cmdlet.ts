// The declarative cmdlet definition: parameters, positions, parameter sets, output view, handler.
// Depends on: params, table (View type).
import type { Args, Params } from './params.ts';
import type { Progress } from './progress.ts';
import type { View } from './table.ts';

export interface CmdletContext {
  /** The cmdlet's canonical name, e.g. 'New-VM'. */
  readonly cmdlet: string;
  /** The resolved parameter set, or undefined when the cmdlet declares none. */
  readonly parameterSet: string | undefined;
  /** Parameters given on the command line (canonical names, positional ones included). */
  readonly bound: ReadonlySet<string>;
  /** -ComputerName, defaulting to ['localhost']. */
  readonly computerName: readonly string[];
  /** Writes `VERBOSE: msg` to stderr when -Verbose was given. */
  verbose(msg: string): void;
  /**
   * PowerShell's ShouldProcess: true when the change to `target` may go ahead; under -WhatIf it
   * writes `What if: Performing the operation "<cmdlet>" on target "<target>".` and returns false.
   */
  shouldProcess(target: string): boolean;
  /** Writes `WARNING: msg` to stderr. */
  warn(msg: string): void;
  /** Write-Progress: a long operation's percent and status on stderr (progress.ts says how); call done() when it ends. */
  progress(activity: string): Progress;
  /** For cmdlets whose output is a stream (a guest command's output, a console log) rather than objects. */
  readonly stdout: Writer;
  readonly stderr: Writer;
  /** The process exit code when `run` returns normally (default 0), e.g. a guest command's own exit code. */
  setExitCode(code: number): void;
}

/** Where text goes: process.stdout / process.stderr, or a collector in tests. */
export interface Writer {
  write(chunk: string | Uint8Array): unknown;
}

export interface CmdletDef<P extends Params = Params> {
  /** Verb-Noun, e.g. 'New-VM'; lookup is case-insensitive. */
  readonly name: string;
  /** One line for `vmhost help`. */
  readonly synopsis?: string;
  readonly params: P;
  /** Parameter names by position: positional[0] binds the first bare argument, and so on. */
  readonly positional?: readonly (keyof P & string)[];
  /** The set chosen when the given parameters fit several sets. */
  readonly defaultSet?: string;
  /** The cmdlet changes things and asks ctx.shouldProcess per target, so it takes -WhatIf. */
  readonly supportsShouldProcess?: boolean;
  /** How output objects are shown to people; absent: all properties (table if few, else list). */
  readonly view?: View;
  /** A parameter set whose objects look different (Get-VMNetworkAdapter -ManagementOS) has its own view. */
  readonly setViews?: Readonly<Record<string, View>>;
  /**
   * Does the work. Returns an object, an array of objects (printed as a table / JSON array), a primitive,
   * or nothing. Action cmdlets return nothing unless args.PassThru.
   */
  run(args: Args<P>, ctx: CmdletContext): Promise<unknown>;
}

/**
 * Any definition, whatever its parameters: what the registry, binder and help take. (CmdletDef<P> is not
 * assignable to CmdletDef<Params> because `positional` uses `keyof P`; this shape accepts every CmdletDef.)
 */
export interface AnyCmdletDef extends Omit<CmdletDef, 'positional' | 'run'> {
  readonly positional?: readonly string[];
  run(args: never, ctx: CmdletContext): Promise<unknown>;
}

/** Identity function that infers literal parameter types (enum values, `mandatory: true`, `array: true`). */
export function defineCmdlet<const P extends Params>(def: CmdletDef<P>): CmdletDef<P> {
  return def;
}
