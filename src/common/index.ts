export { VmhostError, isVmhostError, type ErrorContext } from './errors.ts';
export {
  ERROR_CODES, ERROR_KINDS, ExitCode, isErrorCode, httpStatusOf, exitCodeOf, nbdErrnoOf,
  type ErrorCode, type ErrorKind, type NbdErrno,
} from './error-codes.ts';
// socket-group.ts is imported by path, not from here: the web console compiles this index
// (through host/vm-state.ts) for the browser, which has no node:fs.
