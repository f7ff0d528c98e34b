// CLI error codes and the one constructor the binder uses for them.
// Depends on: common/errors. Every message is one line, starting with the cmdlet name.
import { VmhostError, type ErrorCode, type ErrorContext } from '../common/index.ts';

export const CliErrorCode = {
  /** A value that cannot be converted, a missing argument, a duplicate or stray argument. */
  invalidParameter: 'CLI_INVALID_PARAMETER',
  /** No parameter matches the given name. */
  unknownParameter: 'CLI_UNKNOWN_PARAMETER',
  /** A name prefix matches several parameters. */
  ambiguousParameter: 'CLI_AMBIGUOUS_PARAMETER',
  /** A mandatory parameter was not given. */
  missingParameter: 'CLI_MISSING_PARAMETER',
  /** The given parameters belong to no single parameter set. */
  parameterSet: 'CLI_PARAMETER_SET',
  /** The first word is not a registered cmdlet. */
  unknownCmdlet: 'CLI_UNKNOWN_CMDLET',
  /** A cmdlet definition is malformed (a programming error, caught at registration). */
  invalidDefinition: 'CLI_INVALID_DEFINITION',
} as const satisfies Record<string, ErrorCode>;
export type CliErrorCode = (typeof CliErrorCode)[keyof typeof CliErrorCode];

export function cliError(code: CliErrorCode, cmdlet: string, message: string, context: ErrorContext = {}): VmhostError {
  return new VmhostError(code, `${cmdlet}: ${message}`, { op: 'parse', cmdlet, ...context });
}
