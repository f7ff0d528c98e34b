export { VmhostError, isVmhostError, type ErrorContext } from './errors.ts';
