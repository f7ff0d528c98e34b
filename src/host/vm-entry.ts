// Everything the host knows about one VM: its config, its state, its running side.
import type { BootSourceKind } from './boot-order.ts';
import type { OwnershipFence } from '../storage/index.ts';
import type { MemoryPlan, VmMemoryState } from './vm-memory.ts';
import type { VmConfig } from './vm-config.ts';
import { VmLock } from './vm-lock.ts';
import type { VmPaths } from './vm-paths.ts';
import type { VmRuntime } from './vm-runtime.ts';
import { VmStateMachine, type VmState } from './vm-state.ts';

export class VmEntry {
  runtime?: VmRuntime;
  /** Uptime accumulated before the current run (carried across Save/Start). */
  uptimeBaseMs = 0;
  runningSinceMs?: number;
  lastExitReason?: string;
  /** Set while vmhost itself is stopping QEMU, so the exit is reported as intended. */
  expectedExit?: string;
  /** Resolves once the host has handled the exit of the current runtime's QEMU. */
  exitHandled?: Promise<void>;
  /** The memory layout of the current run (vm-memory.ts), kept with a Save-VM. */
  memoryPlan?: MemoryPlan;
  /** What the dynamic memory driver (vm-memory.ts) last saw and asked of the running VM. */
  memoryState?: VmMemoryState;
  /** What the current (or saved) run booted from; undefined while off. */
  bootSource?: BootSourceKind;
  /** Why the firmware said it could not boot, during the current run. */
  bootFailure?: string;
  /**
   * Set while Remove-VMSnapshot merges a running VM's disks under its lock: Stop-VM and Save-VM
   * abort it to pause the merge between chunks (not to wait for the whole merge), and the
   * removal resumes after them — offline, on the same files, once the VM is off.
   */
  mergePause?: AbortController;
  /** Per hard drive id: whether its first sector had a boot signature when last started. */
  readonly bootableDrives = new Map<string, boolean>();
  /** A clustered VM (its folder in the cluster's shared folder): the ownership token its disks are written under. */
  fence?: OwnershipFence;
  readonly lock = new VmLock();
  /** Changed only by `machine.transition`, under `lock`. */
  readonly machine = new VmStateMachine(() => this.config.name, this.lock);
  constructor(public config: VmConfig, public readonly paths: VmPaths) {}

  get state(): VmState {
    return this.machine.state;
  }
}

