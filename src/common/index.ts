export { VmhostError, isVmhostError, type ErrorContext } from './errors.ts';
export {
  ERROR_CODES, ERROR_KINDS, ExitCode, isErrorCode, httpStatusOf, exitCodeOf, nbdErrnoOf,
  type ErrorCode, type ErrorKind, type NbdErrno,
} from './error-codes.ts';
export { shareSocketWithGroup } from './socket-group.ts';
