// VM states (Hyper-V's names) and which action is legal in which state. One table, so the
// API, the CLI and the web console all refuse the same things with the same words.
import { VmhostError } from '../common/index.ts';

export type VmState = 'Off' | 'Starting' | 'Running' | 'Paused' | 'Saving' | 'Saved' | 'Stopping';

export type VmAction =
  | 'Start' | 'Stop' | 'TurnOff' | 'Restart' | 'Suspend' | 'Resume' | 'Save'
  | 'Remove' | 'SetHardware' | 'InvokeCommand' | 'CopyFile' | 'RemoveSavedState' | 'Debug';

const LEGAL: Record<VmAction, readonly VmState[]> = {
  Start: ['Off', 'Saved'],
  Stop: ['Running'],
  // Turning off is the escape hatch: legal whenever a QEMU process may exist.
  TurnOff: ['Running', 'Paused', 'Starting', 'Stopping', 'Saving'],
  Restart: ['Running'],
  Suspend: ['Running'],
  Resume: ['Paused'],
  Save: ['Running', 'Paused'],
  Remove: ['Off', 'Saved'],
  // Processor count, startup memory, generation-bound devices: only while off, as in Hyper-V.
  SetHardware: ['Off'],
  InvokeCommand: ['Running'],
  CopyFile: ['Running'],
  RemoveSavedState: ['Saved'],
  // Debug-VM acts on the running machine (an NMI reaches a paused one when it resumes).
  Debug: ['Running', 'Paused'],
};

export function isLegal(action: VmAction, state: VmState): boolean {
  return LEGAL[action].includes(state);
}

export function assertLegal(action: VmAction, state: VmState, vmName: string): void {
  if (isLegal(action, state)) return;
  const allowed = LEGAL[action].join(', ');
  throw new VmhostError(
    'INVALID_STATE',
    `Cannot ${action} VM '${vmName}' because it is ${state} (allowed when: ${allowed})`,
    { vm: vmName, action, state },
  );
}
