// A disk operation's refusal that is about one of the caller's arguments: the facades name the
// cmdlet parameter in `context.parameter`, and the CLI prefixes "<cmdlet>: parameter -<name>:".
// Also the one rule for the relative locator a child records for its parent.
import { dirname, relative } from 'node:path';
import { VmhostError, type ErrorCode } from '../common/index.ts';

export function argError(parameter: string, why: string, code: ErrorCode = 'VHD_INVALID_ARGUMENT'): VmhostError {
  return new VmhostError(code, why, { parameter });
}

/** A locator path from a child to its parent, relative to the child's folder ("./x.vhdx", "../p/x.vhdx"). */
export function relativeLocator(child: string, parent: string): string {
  const r = relative(dirname(child), parent);
  return r.startsWith('..') ? r : `./${r}`;
}
