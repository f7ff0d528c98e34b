export { VmhostError, isVmhostError, type ErrorContext } from './errors.ts';
export { shareSocketWithGroup } from './socket-group.ts';
