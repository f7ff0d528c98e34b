// The error for a bad setting value: names the parameter the way the cmdlet spells it.
import { VmhostError } from '../common/index.ts';

export function invalid(param: string, message: string, vm?: string): VmhostError {
  return new VmhostError('INVALID_ARGUMENT', `${param}: ${message}`, { param, vm });
}
