// VM states (Hyper-V's names), which action is legal in which state, and the one place a
// VM's state changes. One table, so the API, the CLI and the web console all refuse the same
// things with the same words; one `transition()`, taken only with the VM lock held.
import { VmhostError } from '../common/index.ts';
import type { LockHeld, VmLock } from './vm-lock.ts';

export type VmState = 'Off' | 'Starting' | 'Running' | 'Paused' | 'Saving' | 'Saved' | 'Stopping' | 'Migrating';

export const VM_STATES: readonly VmState[] = ['Off', 'Starting', 'Running', 'Paused', 'Saving', 'Saved', 'Stopping', 'Migrating'];

interface Rule {
  states: readonly VmState[];
  /** The refusal's words: "Cannot <what> VM 'x' because it is <state>". */
  what: string;
  /** Said after the refusal, when Hyper-V's rule needs explaining. */
  note?: string;
}

const OFF_ONLY: readonly VmState[] = ['Off'];

const LEGAL = {
  Start: { states: ['Off', 'Saved'], what: 'Start' },
  Stop: { states: ['Running'], what: 'Stop' },
  // Turning off is the escape hatch: legal whenever a QEMU process may exist.
  TurnOff: { states: ['Running', 'Paused', 'Starting', 'Stopping', 'Saving'], what: 'TurnOff' },
  Restart: { states: ['Running'], what: 'Restart' },
  Suspend: { states: ['Running'], what: 'Suspend' },
  Resume: { states: ['Paused'], what: 'Resume' },
  Save: { states: ['Running', 'Paused'], what: 'Save' },
  Remove: { states: ['Off', 'Saved'], what: 'Remove' },
  // Processor count, startup memory, NUMA, secure boot: only while off, as in Hyper-V.
  SetHardware: { states: OFF_ONLY, what: 'SetHardware' },
  InvokeCommand: { states: ['Running'], what: 'InvokeCommand' },
  CopyFile: { states: ['Running'], what: 'CopyFile' },
  RemoveSavedState: { states: ['Saved'], what: 'RemoveSavedState' },
  // Debug-VM acts on the running machine (an NMI reaches a paused one when it resumes).
  Debug: { states: ['Running', 'Paused'], what: 'Debug' },
  // Devices, with Hyper-V 2012 R2's rules. IDE has no hot-plug; SCSI disks come and go while it runs.
  IdeHardDrive: { states: OFF_ONLY, what: 'add or remove an IDE hard drive on', note: 'IDE drives can only be changed while the VM is off (SCSI drives hot-plug while it runs)' },
  ScsiHardDrive: { states: ['Off', 'Running'], what: 'add or remove a SCSI hard drive on' },
  // Another file under a drive is a different disk to the guest: only while off.
  SetHardDrivePath: { states: OFF_ONLY, what: 'change the file of a hard drive on' },
  // Storage QoS applies at once on a running VM and from the next start otherwise.
  SetHardDriveQoS: { states: VM_STATES, what: 'change the storage QoS of' },
  AddDvdDrive: { states: OFF_ONLY, what: 'add a DVD drive to' },
  RemoveDvdDrive: { states: OFF_ONLY, what: 'remove a DVD drive from' },
  // Media is inserted and ejected while the VM is off or running, as in Hyper-V.
  SetDvdMedia: { states: ['Off', 'Running'], what: 'change the DVD media of' },
  // 2012 R2 adds and removes network adapters only while off; connecting one works any time.
  AddNetworkAdapter: { states: OFF_ONLY, what: 'add a network adapter to', note: 'network adapters can be added only while the VM is off' },
  RemoveNetworkAdapter: { states: OFF_ONLY, what: 'remove a network adapter from', note: 'network adapters can be removed only while the VM is off' },
  ConnectNetworkAdapter: { states: VM_STATES, what: 'connect or disconnect a network adapter of' },
  // SCSI controllers, the floppy disk and COM ports change only while off.
  SetControllers: { states: OFF_ONLY, what: 'change controllers, the floppy disk or COM ports of' },
  // Checkpoints: taken in any steady state (a running VM keeps running); restoring one turns a running VM off first.
  Checkpoint: { states: ['Off', 'Running', 'Paused', 'Saved'], what: 'Checkpoint' },
  RestoreSnapshot: { states: ['Off', 'Running', 'Paused', 'Saved'], what: 'restore a checkpoint of' },
  // Removing one merges its disks: live (the block server) while the VM runs, offline otherwise.
  RemoveSnapshot: { states: ['Off', 'Running', 'Paused', 'Saved'], what: 'remove a checkpoint of' },
  // Export-VM: an off or saved VM's files are copied as they are; a running or paused one's disks at one point in
  // time under the guest (crash-consistent, it imports Off). Export-VMSnapshot copies frozen files only: any steady state.
  // (Import-VM has no row: it acts on no existing VM; a VM with the imported one's id or name is a compatibility item.)
  Export: { states: ['Off', 'Saved', 'Running', 'Paused'], what: 'export' },
  ExportSnapshot: { states: ['Off', 'Saved', 'Running', 'Paused'], what: 'export a checkpoint of' },
  // Start-VMBackup reads a running or paused VM's served disks at one point in time (vm-backup.ts), an off or
  // saved VM's files directly (under the VM's lock, so it cannot start meanwhile).
  Backup: { states: ['Off', 'Running', 'Paused', 'Saved'], what: 'back up' },
  // Restore-VMBackup -VMName replaces the drives' files: nothing may read them (a saved VM's memory expects the old ones).
  RestoreBackup: { states: OFF_ONLY, what: 'restore a backup over the disks of', note: 'a backup is restored over a VM\'s disks only while it is off' },
  // Hyper-V Replica's cycles (src/replica) read the disks at one point in time, as a backup does: a running or
  // paused VM's through the block server, an off or saved VM's files at rest (Start-VMFailover -Prepare's last cycle).
  Replicate: { states: ['Off', 'Running', 'Paused', 'Saved'], what: 'replicate' },
  // Move-VMStorage: files copied while off or saved, mirrored live (the block server) while running or paused.
  MoveStorage: { states: ['Off', 'Running', 'Paused', 'Saved'], what: 'move the storage of' },
  // Boot order and BIOS settings are read at the next boot, so they change in any state.
  SetBootOrder: { states: VM_STATES, what: 'change the boot order or BIOS settings of' },
  // Add-ClusterVirtualMachineRole moves the VM's folder into the cluster's shared folder: nothing may run from it meanwhile.
  MakeClustered: { states: OFF_ONLY, what: 'make a clustered role of', note: 'a VM becomes a clustered role while it is off' },
  // Remove-ClusterGroup brings the role's folder back into this node's data dir; a saved VM's state file moves with it.
  LeaveCluster: { states: ['Off', 'Saved'], what: 'remove from the cluster' },
  // Move-VM (shared storage): a running VM's memory and devices go to another host; it keeps running here until the destination has it.
  Move: { states: ['Running'], what: 'move', note: 'only a running VM moves live; an off or saved one is moved with Export-VM/Import-VM' },
} as const satisfies Record<string, Rule>;

export type VmAction = keyof typeof LEGAL;

export const VM_ACTIONS = Object.keys(LEGAL) as VmAction[];

export function isLegal(action: VmAction, state: VmState): boolean {
  return (LEGAL[action].states as readonly VmState[]).includes(state);
}

/** Why `action` is refused in `state` (undefined when it is legal): the words the API's error and the console's greyed-out buttons share. */
export function whyIllegal(action: VmAction, state: VmState, vmName: string): string | undefined {
  if (isLegal(action, state)) return undefined;
  const rule: Rule = LEGAL[action];
  return `Cannot ${rule.what} VM '${vmName}' because it is ${state} (allowed when: ${rule.states.join(', ')})${rule.note ? `: ${rule.note}` : ''}`;
}

export function assertLegal(action: VmAction, state: VmState, vmName: string): void {
  const why = whyIllegal(action, state, vmName);
  if (why !== undefined) throw new VmhostError('INVALID_STATE', why, { vm: vmName, action, state });
}

/** Every action refused in `state`, with its reason (Get-VM's UnavailableActions). */
export function unavailableActions(state: VmState, vmName: string): Partial<Record<VmAction, string>> {
  const out: Partial<Record<VmAction, string>> = {};
  for (const a of VM_ACTIONS) {
    const why = whyIllegal(a, state, vmName);
    if (why !== undefined) out[a] = why;
  }
  return out;
}

/**
 * Which state may follow which. Besides the actions' own paths: a failed action goes back to
 * where it began, a QEMU that exits leaves the VM Off from any live state, and after a daemon
 * restart a VM found running, paused or saved goes there straight from Off.
 */
const TRANSITIONS: Record<VmState, readonly VmState[]> = {
  Off: ['Starting', 'Running', 'Paused', 'Saved'],
  Starting: ['Running', 'Off', 'Saved'],
  Running: ['Stopping', 'Paused', 'Saving', 'Off', 'Migrating'],
  Paused: ['Running', 'Saving', 'Off'],
  Saving: ['Saved', 'Running', 'Paused', 'Off'],
  Saved: ['Starting', 'Off'],
  Stopping: ['Off', 'Running'],
  // A failed move resumes the VM here (Running), one whose outcome is unknown leaves it Paused; a moved one is gone (Off, then removed).
  Migrating: ['Running', 'Paused', 'Off'],
};

export function canTransition(from: VmState, to: VmState): boolean {
  return from === to || TRANSITIONS[from].includes(to);
}

/** A VM's state. Read it anywhere; change it only through `transition`, with the VM lock held. */
export class VmStateMachine {
  #state: VmState = 'Off';

  constructor(private readonly vmName: () => string, private readonly lock: VmLock) {}

  get state(): VmState {
    return this.#state;
  }

  /** The only assignment of a VM's state. `held` comes from the VM's lock (vm-lock.ts). */
  transition(held: LockHeld, to: VmState): void {
    // Either failure is a bug in vmhost, not a refusal of the user's request.
    if (!this.lock.holds(held)) {
      throw new VmhostError('VM_STATE_TRANSITION', `VM '${this.vmName()}' cannot go from ${this.#state} to ${to} outside its lock`, { vm: this.vmName(), from: this.#state, to });
    }
    if (!canTransition(this.#state, to)) {
      throw new VmhostError('VM_STATE_TRANSITION', `VM '${this.vmName()}' cannot go from ${this.#state} to ${to}`, { vm: this.vmName(), from: this.#state, to });
    }
    this.#state = to;
  }
}
