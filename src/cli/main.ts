// The dispatcher: `vmhost <Cmdlet> args…`, `vmhost help [Cmdlet|pattern]`, `vmhost <Cmdlet> -?`.
// Binds, runs, prints, and returns the exit code; never calls process.exit, so tests call it directly.
// Depends on: registry, bind, help, output, exit-codes, errors.
import { isVmhostError } from '../common/index.ts';
import { bindArguments } from './bind.ts';
import type { CmdletContext, Writer } from './cmdlet.ts';
import { cliError, CliErrorCode } from './errors.ts';
import { exitCodeFor, ExitCode } from './exit-codes.ts';
import { formatCmdletList, formatHelp } from './help.ts';
import { formatOutput } from './output.ts';
import { ProgressDisplay } from './progress.ts';
import type { CmdletRegistry } from './registry.ts';
import { hasWildcard } from './wildcard.ts';

export interface MainOptions {
  readonly registry: CmdletRegistry;
  readonly stdout: Writer;
  readonly stderr: Writer;
  /** Terminal width for tables (default: stdout.columns when it is a terminal, else 120). */
  readonly columns?: number;
}

const HELP_WORDS = new Set(['help', 'get-help', '-?', '--help', '-h', '/?']);

/** Runs one command line (argv without node and the script path) and returns the process exit code. */
export async function main(argv: readonly string[], opts: MainOptions): Promise<number> {
  const { registry, stdout, stderr } = opts;
  const [first, ...rest] = argv;
  if (first === undefined || HELP_WORDS.has(first.toLowerCase())) return help(rest[0], opts);

  const def = registry.get(first);
  if (!def) {
    const near = registry.suggest(first);
    const err = cliError(CliErrorCode.unknownCmdlet, 'vmhost',
      `the term '${first}' is not recognized as a cmdlet${near.length ? `; did you mean ${near.join(', ')}?` : ''} (vmhost help lists them)`);
    stderr.write(`${err.message}\n`);
    return exitCodeFor(err);
  }
  if (rest.includes('-?')) { stdout.write(formatHelp(def)); return ExitCode.ok; }

  let verbose = false;
  let exitCode: number = ExitCode.ok;
  const progress = new ProgressDisplay(stderr);
  // Every other line written to stderr moves the progress bar out of its way first.
  const toStderr = (line: string) => { progress.clear(); stderr.write(line); };
  try {
    const { args, parameterSet, bound } = bindArguments(def, rest);
    verbose = args['Verbose'] === true;
    const ctx: CmdletContext = {
      cmdlet: def.name,
      parameterSet,
      bound,
      computerName: (args['ComputerName'] as string[] | undefined) ?? ['localhost'],
      verbose: (msg) => { if (verbose) toStderr(`VERBOSE: ${msg}\n`); },
      shouldProcess: (target) => {
        if (args['WhatIf'] !== true) return true;
        stdout.write(`What if: Performing the operation "${def.name}" on target "${target}".\n`);
        return false;
      },
      warn: (msg) => { toStderr(`WARNING: ${msg}\n`); },
      progress: (activity) => progress.begin(activity),
      stdout,
      stderr,
      setExitCode: (code) => { exitCode = code; },
    };
    const output = await def.run(args as never, ctx); // args were bound from this very definition
    const width = opts.columns ?? terminalWidth(stdout);
    const view = (parameterSet !== undefined ? def.setViews?.[parameterSet] : undefined) ?? def.view;
    const text = formatOutput(output, { json: args['Json'] === true, ...(view ? { view } : {}), width });
    if (text !== '') stdout.write(text);
    return exitCode;
  } catch (e) {
    toStderr(`${errorLine(def.name, e)}\n`);
    if (verbose && e instanceof Error && e.stack) stderr.write(`VERBOSE: ${e.stack}\n`);
    return exitCodeFor(e);
  }
}

/** One line: `<Cmdlet>: message`, without repeating the prefix the binder already put there. */
export function errorLine(cmdlet: string, e: unknown): string {
  const msg = (e instanceof Error ? e.message : String(e)).replace(/\s*\r?\n\s*/g, ' ').trim();
  const text = isVmhostError(e) || !(e instanceof Error) ? msg : `${e.name}: ${msg}`;
  return text.toLowerCase().startsWith(`${cmdlet.toLowerCase()}:`) ? text : `${cmdlet}: ${text}`;
}

function help(topic: string | undefined, { registry, stdout, stderr }: MainOptions): number {
  if (topic === undefined) {
    stdout.write('Usage: vmhost <Cmdlet> [-Parameter value ...]   vmhost <Cmdlet> -?   vmhost help <Cmdlet|pattern>\n\n');
    stdout.write(formatCmdletList(registry.list()));
    return ExitCode.ok;
  }
  const def = registry.get(topic);
  if (def) { stdout.write(formatHelp(def)); return ExitCode.ok; }
  const matches = hasWildcard(topic) ? registry.list(topic) : registry.list(`*${topic}*`);
  if (matches.length === 1) { stdout.write(formatHelp(matches[0]!)); return ExitCode.ok; }
  if (matches.length > 1) { stdout.write(formatCmdletList(matches)); return ExitCode.ok; }
  const near = registry.suggest(topic);
  const err = cliError(CliErrorCode.unknownCmdlet, 'Get-Help', `no help topic matches '${topic}'${near.length ? `; did you mean ${near.join(', ')}?` : ''}`);
  stderr.write(`${err.message}\n`);
  return exitCodeFor(err);
}

function terminalWidth(w: Writer): number {
  const o = w as { isTTY?: boolean; columns?: number };
  return o.isTTY && typeof o.columns === 'number' && o.columns > 0 ? o.columns : 120;
}
