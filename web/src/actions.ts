// The VM actions the console offers, and when each is legal — from the host's own table
// (src/host/vm-state.ts), so a button is greyed out exactly when the API would refuse.
import { isLegal, whyIllegal, type VmAction } from '../../src/host/vm-state.ts';
import { api, runAction, vmPath, type Job, type VmState, type VmVerb, type VmView } from './api.ts';

export interface ActionDef {
  verb: VmVerb | 'delete';
  label: string;
  legal: VmAction;
  /** Asked before doing it: the action loses guest state. */
  confirm?: string;
  danger?: boolean;
}

export const ACTIONS: readonly ActionDef[] = [
  { verb: 'start', label: 'Start', legal: 'Start' },
  { verb: 'shutdown', label: 'Shut Down', legal: 'Stop' },
  { verb: 'turnoff', label: 'Turn Off', legal: 'TurnOff', confirm: 'Turning off is like pulling the power cord: unsaved data in the guest is lost.', danger: true },
  { verb: 'save', label: 'Save', legal: 'Save' },
  { verb: 'suspend', label: 'Pause', legal: 'Suspend' },
  { verb: 'resume', label: 'Resume', legal: 'Resume' },
  { verb: 'restart', label: 'Restart', legal: 'Restart', confirm: 'Restarting resets the VM like a reset button: unsaved data in the guest is lost.', danger: true },
  { verb: 'delete', label: 'Delete', legal: 'Remove', confirm: 'Deleting removes the VM’s configuration, logs and saved state from this host. This cannot be undone.', danger: true },
  // Export… asks for a folder, so it is its own button (views/ExportDialog.tsx, greyed out by the 'Export' row);
  // Import… acts on no existing VM and is a page of its own beside New VM (views/ImportVm.tsx).
];

export function legalIn(a: ActionDef, state: VmState): boolean {
  return isLegal(a.legal, state);
}

export function canSetHardware(state: VmState): boolean {
  return isLegal('SetHardware', state);
}

/** Why the host would refuse `action` on `vm` now (undefined when it is legal): a greyed-out button's title, in the API's own words. */
export function whyNot(action: VmAction, vm: VmView): string | undefined {
  return whyIllegal(action, vm.State, vm.Name);
}

export function canConnect(state: VmState): boolean {
  return state === 'Running' || state === 'Paused';
}

/** Run one action on one VM: a job for lifecycle verbs, a plain DELETE for Delete. */
export async function perform(a: ActionDef, vm: VmView): Promise<Job | undefined> {
  if (a.verb === 'delete') {
    await api('DELETE', vmPath(vm.Id));
    return undefined;
  }
  return runAction(vm.Id, a.verb);
}
