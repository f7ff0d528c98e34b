// Error → process exit code: a lookup into the one table in common/error-codes.ts.
import { isVmhostError, exitCodeOf, ExitCode } from '../common/index.ts';

export { ExitCode } from '../common/index.ts';

export function exitCodeFor(err: unknown): ExitCode {
  return isVmhostError(err) ? exitCodeOf(err.code) : ExitCode.failure;
}
