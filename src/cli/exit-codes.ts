// The one table from error codes to process exit codes. The CLI's own codes are here; modules that
// define codes the CLI surfaces add their row here. Pure; depends on common/errors.
import { isVmhostError } from '../common/index.ts';
import { CliErrorCode } from './errors.ts';

export const ExitCode = {
  ok: 0,
  /** Anything not in the table, including errors that are not VmhostErrors. */
  failure: 1,
  /** The command line is wrong: unknown cmdlet or parameter, bad value, missing mandatory parameter. */
  usage: 2,
  notFound: 3,
  /** The object exists but cannot do that now (e.g. Start-VM on a running VM). */
  invalidState: 4,
  /** The daemon cannot be reached or refused us. */
  connection: 5,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export const EXIT_CODES: Readonly<Record<string, ExitCode>> = {
  [CliErrorCode.invalidParameter]: ExitCode.usage,
  [CliErrorCode.unknownParameter]: ExitCode.usage,
  [CliErrorCode.ambiguousParameter]: ExitCode.usage,
  [CliErrorCode.missingParameter]: ExitCode.usage,
  [CliErrorCode.parameterSet]: ExitCode.usage,
  [CliErrorCode.unknownCmdlet]: ExitCode.usage,
  [CliErrorCode.invalidDefinition]: ExitCode.failure,
  // Codes the daemon answers with (src/api/error-status.ts holds their HTTP twin).
  INVALID_ARGUMENT: ExitCode.usage,
  ALREADY_EXISTS: ExitCode.invalidState,
  AGENT_NOT_READY: ExitCode.invalidState,
  // Copy-VMFile (src/host/guest-file-copy.ts).
  INTEGRATION_SERVICE_DISABLED: ExitCode.invalidState,
  GUEST_FILE_EXISTS: ExitCode.invalidState,
  GUEST_DIRECTORY_NOT_FOUND: ExitCode.notFound,
  NOT_FOUND: ExitCode.notFound,
  VM_NOT_FOUND: ExitCode.notFound,
  INVALID_STATE: ExitCode.invalidState,
  CONNECTION_FAILED: ExitCode.connection,
  AUTH_FAILED: ExitCode.connection,
  // Disk file cmdlets (src/cli/cmdlets/vhd.ts) and the engines under them (vhd/, vhd/vhd1/, storage/open-disk).
  VHDX_INVALID_ARGUMENT: ExitCode.usage,
  VHD_INVALID_ARGUMENT: ExitCode.usage,
  VHDX_TOO_LARGE: ExitCode.usage,
  VHD_TOO_LARGE: ExitCode.usage,
  VHD_FILE_NOT_FOUND: ExitCode.notFound,
  VHD_METADATA_NOT_FOUND: ExitCode.notFound,
  VHDX_PARENT_NOT_FOUND: ExitCode.notFound,
  VHD_PARENT_MISSING: ExitCode.notFound,
  STORAGE_PARENT_NOT_FOUND: ExitCode.notFound,
  VHD_FILE_EXISTS: ExitCode.invalidState,
  // A disk file another open holds (storage/file-lock.ts): a running VM, a host mount, another process.
  VHD_IN_USE: ExitCode.invalidState,
  VHD_BELOW_MINIMUM_SIZE: ExitCode.invalidState,
  VHD_UNSUPPORTED: ExitCode.invalidState,
  VHDX_PARENT_MISMATCH: ExitCode.invalidState,
  VHD_PARENT_MISMATCH: ExitCode.invalidState,
  VHDX_LOG_REPLAY_NEEDED: ExitCode.invalidState,
  VHDX_READ_ONLY: ExitCode.invalidState,
  VHD_READ_ONLY: ExitCode.invalidState,
  VHDX_CORRUPT: ExitCode.failure,
  VHD_CORRUPT: ExitCode.failure,
};

export function exitCodeFor(err: unknown): ExitCode {
  return isVmhostError(err) ? (EXIT_CODES[err.code] ?? ExitCode.failure) : ExitCode.failure;
}
