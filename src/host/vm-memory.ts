// Dynamic memory in the daemon: each second, every running VM's memory is read (QEMU: balloon
// and virtio-mem; the guest: its agent's meminfo and PSI, else the balloon's statistics), the
// balancer (memory-balancer.ts, pure) decides, and the targets go to QEMU. It also plans a
// start: which memory a VM boots with, and when the host cannot back its startup memory even
// with the others at their minimum, smart paging.
//
// How the memory is laid out (qemu/command-line.ts):
// - boot RAM (-m) = the startup memory; the balloon gives it back down to the minimum;
// - `vmem0`, a virtio-mem device of RAM, adds memory above the startup memory. It spans up to
//   the host's capacity, not the VM's maximum, so MaximumBytes can be raised while the VM runs
//   (the region reserves nothing until blocks are plugged);
// - smart paging: QEMU cannot swap a RAM backend live, so a VM the host cannot back boots with
//   its minimum as boot RAM, what the host can give above it plugged from `vmem0`, and the rest
//   of its startup memory plugged from `vmemsp`, a virtio-mem device backed by a file in the
//   smart paging folder (a shared mapping: those pages live in the file). Once the guest's
//   demand fits in the RAM the balancer gives it, `vmemsp`'s blocks are unplugged (the guest
//   moves what it had there) and the file is removed. The file is at most startup − minimum
//   and starts sparse; a start whose folder lacks that much free space, or whose minimum the
//   host cannot back, fails with HOST_MEMORY_INSUFFICIENT.
import { statfs, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { VmhostError } from '../common/index.ts';
import { VIRTIO_MEM_BLOCK, type VirtioMemSpec } from '../qemu/index.ts';
import type { EventLevel } from './events.ts';
import { MEMORY_UNIT, balance, memoryStatus, type BalancerVm } from './memory-balancer.ts';
import { memoryBounds } from './memory-settings.ts';
import { MEMORY_MAX, fmtBytes } from './vm-config.ts';
import type { VmEntry } from './vm-entry.ts';
import type { LiveMemory } from './vm-view.ts';

export const RAM_DEVICE = 'vmem0';
export const PAGING_DEVICE = 'vmemsp';
const TICK_MS = 1000;
/** PSI "some" avg10 above this: the guest stalls on memory although it reports some available. */
const PSI_STALL_PERCENT = 10;
/** Growth smaller than this is not worth a balloon or virtio-mem change. */
const HYSTERESIS = 8 * 1024 * 1024;

export interface MemoryHost {
  entries(): Iterable<VmEntry>;
  /** What the host hands out to VMs (--memory-capacity, else the machine's memory). */
  capacityBytes(): number;
  reserveBytes(): number;
  event(level: EventLevel, code: string, message: string, e?: VmEntry): void;
}

/** How a VM starts: its boot RAM and virtio-mem devices (VmRuntime.launch hands them to QEMU). */
export interface MemoryPlan {
  bootBytes: number;
  virtioMem: VirtioMemSpec[];
  /** Dynamic memory: the balloon gives pages back to a guest about to OOM (qemu's deflate-on-oom). */
  deflateOnOom: boolean;
}

/** The driver's per-VM state, kept on the VmEntry while the VM runs. */
export interface VmMemoryState {
  memory: LiveMemory;
  /** The smart paging file while it exists. */
  pagingFile?: string;
  /** What was last asked of QEMU, so an unchanged target is not sent again. */
  sent?: string;
  /** The RAM target last carried out. */
  target?: number;
  /** The last adjustment's failure, so one that repeats every second is reported once. */
  failed?: string;
}

const alignUp = (n: number) => Math.ceil(n / MEMORY_UNIT) * MEMORY_UNIT;
const alignDown = (n: number) => Math.floor(n / MEMORY_UNIT) * MEMORY_UNIT;

/** The paging file's name in its folder (one per VM). */
export function pagingFileName(e: VmEntry): string {
  return join(e.config.smartPagingFilePath ?? e.paths.dir, `${e.config.id}.smartpaging`);
}

export class VmMemory {
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;

  constructor(private readonly host: MemoryHost) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), TICK_MS);
    this.timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
  }

  /** What Get-VM shows of a running VM's memory; undefined before the first reading. */
  of(e: VmEntry): LiveMemory | undefined {
    return e.memoryState?.memory;
  }

  /** Memory a VM that runs holds now: its last reading, else its startup memory. */
  private held(e: VmEntry): number {
    if (e.state === 'Off' || e.state === 'Saved') return 0;
    const m = e.memoryState?.memory;
    return m ? m.assignedBytes - m.pagingBytes : e.config.memoryStartupBytes;
  }

  /**
   * The memory layout of a VM about to start (under its lock). Static memory: the startup
   * memory. Dynamic: the startup memory and a RAM virtio-mem region up to the host's capacity.
   * When the host cannot back the startup memory even with the other dynamic VMs at their
   * minimum: smart paging, as the file header says.
   */
  async plan(e: VmEntry): Promise<MemoryPlan> {
    const c = e.config;
    const startup = c.memoryStartupBytes;
    // What the host could give this VM if every other dynamic VM went down to its minimum.
    let others = 0;
    for (const o of this.host.entries()) {
      if (o === e || o.state === 'Off' || o.state === 'Saved') continue;
      others += o.config.dynamicMemory.enabled ? Math.min(memoryBounds(o.config).minimumBytes, this.held(o)) : this.held(o);
    }
    const room = alignDown(this.host.capacityBytes() - this.host.reserveBytes() - others);
    const { minimumBytes } = memoryBounds(c);
    if (room < minimumBytes) {
      throw new VmhostError('HOST_MEMORY_INSUFFICIENT',
        `VM '${c.name}' needs ${fmtBytes(minimumBytes)} of memory to start and this host can give ${fmtBytes(Math.max(0, room))} (capacity ${fmtBytes(this.host.capacityBytes())}, the other running VMs held at their minimum)`,
        { vm: c.name, neededBytes: minimumBytes, availableBytes: Math.max(0, room) });
    }
    e.memoryState = undefined;
    if (!c.dynamicMemory.enabled) return { bootBytes: startup, virtioMem: [], deflateOnOom: false };
    const ceiling = Math.max(startup, alignDown(Math.min(this.host.capacityBytes(), MEMORY_MAX)));
    if (room >= startup) {
      return { bootBytes: startup, virtioMem: ceiling > startup ? [{ id: RAM_DEVICE, sizeBytes: ceiling - startup, requestedBytes: 0 }] : [], deflateOnOom: true };
    }
    const ram = Math.max(minimumBytes, room);
    const paging = startup - ram;
    const file = pagingFileName(e);
    await this.checkPagingSpace(e, file, paging, room);
    await rm(file, { force: true });
    e.memoryState = { memory: { assignedBytes: startup, demandBytes: 0, status: '', pagingBytes: paging }, pagingFile: file };
    this.host.event('Warning', 'VM_SMART_PAGING', `Starting with a smart paging file: the host can back ${fmtBytes(ram)} of the startup memory ${fmtBytes(startup)}; ${fmtBytes(paging)} paged to ${file} until the balancer can take it back`, e);
    return {
      bootBytes: minimumBytes,
      deflateOnOom: true,
      virtioMem: [
        { id: RAM_DEVICE, sizeBytes: ceiling - minimumBytes, requestedBytes: ram - minimumBytes },
        { id: PAGING_DEVICE, sizeBytes: paging, requestedBytes: paging, file },
      ],
    };
  }

  private async checkPagingSpace(e: VmEntry, file: string, bytes: number, room: number): Promise<void> {
    const folder = join(file, '..');
    const s = await statfs(folder).catch((err: unknown) => {
      throw new VmhostError('HOST_MEMORY_INSUFFICIENT', `VM '${e.config.name}': the smart paging folder ${folder} cannot be used: ${(err as Error).message}`, { vm: e.config.name, path: folder });
    });
    const free = s.bavail * s.bsize;
    if (free < bytes) {
      throw new VmhostError('HOST_MEMORY_INSUFFICIENT',
        `VM '${e.config.name}' needs ${fmtBytes(e.config.memoryStartupBytes)} to start; the host can give ${fmtBytes(room)} and the smart paging folder ${folder} has ${fmtBytes(free)} free of the ${fmtBytes(bytes)} the rest needs`,
        { vm: e.config.name, path: folder, neededBytes: bytes, freeBytes: free });
    }
  }

  /** The VM's QEMU is gone: its paging file goes with it. */
  async stopped(e: VmEntry): Promise<void> {
    const s = e.memoryState;
    e.memoryState = undefined;
    if (s?.pagingFile) await rm(s.pagingFile, { force: true });
  }

  /** One round: read every running VM, balance, carry out. Skipped while the previous one runs. */
  async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      await this.round();
    } finally {
      this.ticking = false;
    }
  }

  private async round(): Promise<void> {
    const active = [...this.host.entries()].filter((e) => e.runtime && e.state !== 'Off' && e.state !== 'Saved');
    const seen = await Promise.all(active.map(async (e) => {
      try {
        const reading = await e.runtime!.readMemory();
        const guest = e.config.dynamicMemory.enabled && e.state === 'Running' ? await e.runtime!.guestMemory() : undefined;
        return { e, reading, guest };
      } catch {
        return { e, reading: undefined, guest: undefined };
      }
    }));
    let fixed = 0;
    const vms: (BalancerVm & { e: VmEntry; paging: number; used: number })[] = [];
    for (const { e, reading, guest } of seen) {
      if (!reading) { fixed += this.held(e); continue; }
      const plugged = Object.entries(reading.devices).reduce((s, [id, d]) => s + (id === PAGING_DEVICE ? 0 : d.pluggedBytes), 0);
      // The paging part counts from the start: the guest plugs it once its driver loads.
      const pagingDev = reading.devices[PAGING_DEVICE];
      const paging = pagingDev ? Math.max(pagingDev.pluggedBytes, pagingDev.requestedBytes) : 0;
      const assigned = reading.balloonBytes + plugged + paging;
      const state: VmMemoryState = e.memoryState ?? { memory: { assignedBytes: assigned, demandBytes: 0, status: '', pagingBytes: paging } };
      // A VM re-attached after a daemon restart: its paging file is found by its name.
      if (!e.memoryState && reading.devices[PAGING_DEVICE]) state.pagingFile = pagingFileName(e);
      e.memoryState = state;
      state.memory = { ...state.memory, assignedBytes: assigned, pagingBytes: paging };
      // A guest last seen short of memory that stops answering is most likely stalled on that
      // very shortage (its agent needs memory to reply, its balloon statistics stop): it is
      // taken as using all it has and still under pressure, so it keeps getting room until
      // it answers again, instead of being held where it stalled.
      const starved = !(guest && guest.totalBytes > 0) && e.config.dynamicMemory.enabled && e.state === 'Running'
        && (state.memory.status === 'Low' || state.memory.status === 'Warning');
      if (!starved && !(guest && guest.totalBytes > 0)) { fixed += assigned - paging; continue; }
      // What the guest cannot give back: everything but MemAvailable (its kernel's own share
      // included, which MemTotal leaves out; MemTotal itself is not used, since a balloon that
      // deflates on OOM stays inside it). The buffer is a percentage of that use.
      const used = guest && !starved ? Math.max(0, assigned - guest.availableBytes) : assigned - paging;
      let demand = used + (used * e.config.dynamicMemory.bufferPercent) / 100;
      if (starved || (guest?.psiSomeAvg10 ?? 0) > PSI_STALL_PERCENT) demand += assigned / 10;
      const { minimumBytes, maximumBytes } = memoryBounds(e.config);
      vms.push({
        e, id: e.config.id, minimumBytes, maximumBytes, assignedBytes: assigned - paging, demandBytes: demand,
        priority: e.config.dynamicMemory.priority, paging, used,
      });
    }
    const targets = balance(vms, { capacityBytes: this.host.capacityBytes(), reserveBytes: this.host.reserveBytes(), fixedBytes: fixed });
    await Promise.all(vms.map(async (v, i) => {
      const t = targets[i]!;
      const state = v.e.memoryState!;
      // Growth by less than a few MB waits (the guest's use jitters; every change is QMP traffic
      // and balloon work); shrinking is never held back, so the cap holds.
      const last = state.target;
      const target = last !== undefined && t.targetBytes > last && t.targetBytes - last < HYSTERESIS && last >= v.minimumBytes ? last : t.targetBytes;
      state.target = target;
      // The paging part shrinks (never grows) toward what the guest wants beyond its RAM.
      const paging = Math.min(v.paging, Math.max(0, alignUp(t.desiredBytes - target)));
      state.memory = {
        assignedBytes: v.assignedBytes + v.paging, demandBytes: alignUp(v.used), pagingBytes: v.paging,
        status: memoryStatus(v.assignedBytes + v.paging, v.used, v.demandBytes),
      };
      try {
        await this.apply(v.e, state, target, paging);
        state.failed = undefined;
      } catch (err) {
        const message = (err as Error).message;
        if (message !== state.failed) this.host.event('Warning', 'VM_MEMORY_ADJUST_FAILED', `Dynamic memory could not be adjusted: ${message}`, v.e);
        state.failed = message;
      }
    }));
  }

  /** Carry a RAM target (and the paging part) out: balloon within the boot RAM, virtio-mem above it. */
  private async apply(e: VmEntry, state: VmMemoryState, target: number, paging: number): Promise<void> {
    const reading = await e.runtime!.readMemory();
    const boot = reading.bootBytes;
    const ram = reading.devices[RAM_DEVICE];
    const requested: Record<string, number> = {};
    if (ram) requested[RAM_DEVICE] = Math.min(ram.maxBytes, Math.ceil(Math.max(0, target - boot) / VIRTIO_MEM_BLOCK) * VIRTIO_MEM_BLOCK);
    if (reading.devices[PAGING_DEVICE]) requested[PAGING_DEVICE] = paging;
    const balloon = Math.min(target, boot);
    const key = JSON.stringify([balloon, requested]);
    if (key !== state.sent) {
      await e.runtime!.setMemory(balloon, requested);
      state.sent = key;
    }
    if (state.pagingFile && reading.devices[PAGING_DEVICE]?.pluggedBytes === 0 && paging === 0) {
      // Nothing of the file is plugged: its blocks are punched out and QEMU will not touch it again.
      await rm(state.pagingFile, { force: true });
      this.host.event('Information', 'VM_SMART_PAGING_ENDED', `Smart paging ended: the VM runs in ${fmtBytes(target)} of host memory; ${state.pagingFile} removed`, e);
      state.pagingFile = undefined;
    }
  }
}
