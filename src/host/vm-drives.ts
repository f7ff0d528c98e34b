// VM storage actions: Add/Get/Set/Remove-VMHardDiskDrive, Add/Get/Remove-VMDvdDrive, online
// resize of attached disks, disk counters. IDE changes need the VM off; SCSI disks hot-plug
// into a running VM. A disk file belongs to one VM at a time.
import { resolve } from 'node:path';
import { VmhostError, isVmhostError } from '../common/index.ts';
import { assertLegal } from './vm-state.ts';
import { describeOpenDisk, testOpenDisk, type ServedDisk, type VirtualHardDisk } from '../storage/index.ts';
import {
  checkIops, checkSlot, freeSlot, newDriveId, sameSlot, slotText,
  type ControllerType, type DriveSlot, type DvdDrive, type HardDrive,
} from './drives.ts';
import type { EventLevel } from './events.ts';
import { invalid } from './invalid-argument.ts';
import type { VmEntry } from './vm-entry.ts';
import type { VmConfig } from './vm-config.ts';
import { VmStorage, diskInUse } from './vm-storage.ts';
import { qemuUserCanRead, type QemuUser } from './qemu-user.ts';

/** What the drive actions need of the host. */
export interface DriveHost {
  resolve(nameOrId: string): VmEntry;
  entries(): Iterable<VmEntry>;
  persist(e: VmEntry): Promise<void>;
  /** Write `next` as the VM's config, then make it the VM's (memory changes only after the write). */
  persistNext(e: VmEntry, next: VmConfig): Promise<void>;
  event(level: EventLevel, code: string, message: string, e?: VmEntry): void;
  readonly storage: VmStorage;
  readonly computerName: string;
  /** The user QEMU runs as when it is not the daemon's (qemu-user.ts). */
  readonly qemuUser: QemuUser | undefined;
}

export interface AddHardDriveParams {
  Path: string;
  ControllerType?: ControllerType;
  ControllerNumber?: number;
  ControllerLocation?: number;
  MaximumIOPS?: number;
  MinimumIOPS?: number;
}

export interface SlotParams { ControllerType: ControllerType; ControllerNumber: number; ControllerLocation: number }

export interface SetHardDriveParams extends SlotParams { Path?: string; MaximumIOPS?: number; MinimumIOPS?: number }

export interface AddDvdDriveParams { Path?: string; ControllerNumber?: number; ControllerLocation?: number }

/** Set-VMDvdDrive: the drive by its slot; Path null ejects. */
export interface SetDvdDriveParams { ControllerNumber: number; ControllerLocation: number; Path: string | null }

export interface HardDriveView {
  VMName: string; VMId: string; ComputerName: string; Id: string; Name: string; Path: string;
  ControllerType: ControllerType; ControllerNumber: number; ControllerLocation: number;
  MaximumIOPS: number; MinimumIOPS: number; DiskNumber: null; SupportPersistentReservations: false;
  /** vmhost: where host tools reach the disk while the VM runs (nbd+unix URI), else null. */
  NbdUri: string | null;
}

export interface DvdDriveView {
  VMName: string; VMId: string; ComputerName: string; Id: string; Name: string; Path: string | null;
  ControllerType: ControllerType; ControllerNumber: number; ControllerLocation: number; DvdMediaType: 'ISO' | 'None';
}

export interface HardDiskMetrics {
  Path: string; ControllerType: ControllerType; ControllerNumber: number; ControllerLocation: number;
  ReadOperations: number; WriteOperations: number; FlushOperations: number; DataRead: number; DataWritten: number;
  NormalizedIOCount: number; NormalizedIOPS: number; AverageLatencyMs: number; Errors: number;
}

function driveName(kind: 'Hard Drive' | 'DVD Drive', s: DriveSlot): string {
  return `${kind} on ${s.controllerType} controller number ${s.controllerNumber} at location ${s.controllerLocation}`;
}

export class VmDrives {
  constructor(private readonly host: DriveHost) {}

  private hardView(e: VmEntry, d: HardDrive): HardDriveView {
    return {
      VMName: e.config.name, VMId: e.config.id, ComputerName: this.host.computerName, Id: d.id, Name: driveName('Hard Drive', d), Path: d.path,
      ControllerType: d.controllerType, ControllerNumber: d.controllerNumber, ControllerLocation: d.controllerLocation,
      MaximumIOPS: d.maximumIops, MinimumIOPS: d.minimumIops, DiskNumber: null, SupportPersistentReservations: false,
      NbdUri: this.host.storage.uri(d) ?? null,
    };
  }

  listHard(nameOrId: string): HardDriveView[] {
    const e = this.host.resolve(nameOrId);
    return e.config.hardDrives.map((d) => this.hardView(e, d));
  }

  private allSlots(e: VmEntry): DriveSlot[] {
    return [...e.config.hardDrives, ...e.config.dvdDrives];
  }

  /** Which slot; the default type follows the generation (IDE on 1, SCSI on 2), as Hyper-V does. */
  private pickSlot(e: VmEntry, p: { ControllerType?: ControllerType; ControllerNumber?: number; ControllerLocation?: number }): DriveSlot {
    const type = p.ControllerType ?? (e.config.generation === 1 ? 'IDE' : 'SCSI');
    const used = this.allSlots(e);
    const slot = p.ControllerLocation === undefined
      ? freeSlot(type, used, e.config.name, p.ControllerNumber, e.config.scsiControllers)
      : { controllerType: type, controllerNumber: p.ControllerNumber ?? 0, controllerLocation: p.ControllerLocation };
    checkSlot(slot, e.config.generation, e.config.name);
    if (slot.controllerType === 'SCSI' && slot.controllerNumber >= e.config.scsiControllers) {
      throw invalid('ControllerNumber', `VM '${e.config.name}' has no SCSI controller ${slot.controllerNumber} (it has ${e.config.scsiControllers}; Add-VMScsiController adds one while the VM is off)`, e.config.name);
    }
    const taken = used.find((u) => sameSlot(u, slot));
    if (taken) throw invalid('ControllerLocation', `${slotText(slot)} already holds a drive on VM '${e.config.name}'`, e.config.name);
    return slot;
  }

  /** Hot changes are possible only for SCSI on a running VM; anything else needs it off (vm-state.ts). */
  private assertChangeable(e: VmEntry, slot: DriveSlot): void {
    assertLegal(slot.controllerType === 'IDE' ? 'IdeHardDrive' : 'ScsiHardDrive', e.state, e.config.name);
  }

  private assertPathFree(path: string, except?: HardDrive): void {
    for (const o of this.host.entries()) {
      const d = o.config.hardDrives.find((h) => h !== except && resolve(h.path) === path);
      if (d) throw new VmhostError('INVALID_STATE', `${path} is already attached to VM '${o.config.name}' (${slotText(d)})`, { path, vm: o.config.name });
    }
    if (this.host.storage.isMounted(path)) throw new VmhostError('INVALID_STATE', `${path} is mounted on the host (Dismount-VHD first)`, { path });
    // A parent in the chain of a disk being served: attaching it (read-write) would write under that VM.
    const holder = this.holderOf(path);
    if (holder) throw diskInUse(path, holder);
  }

  /** VmStorage.probe, with the holder of a file in the chain that is in use named (a differencing disk of a running VM's disk). */
  private async probe(path: string): Promise<{ logicalSectorSize: number; bootable: boolean }> {
    try {
      return await VmStorage.probe(path);
    } catch (e) {
      if (!isVmhostError(e, 'VHD_IN_USE')) throw e;
      const file = String(e.context['path']);
      const held = this.holderOf(file);
      throw held ? diskInUse(file, held) : e;
    }
  }

  /**
   * Who holds a disk file open on this host, as Hyper-V names it: "VM 'x'" when it is (or is a
   * parent of) a running VM's disk, "a host mount" for Mount-VHD; undefined when nobody does.
   */
  holderOf(path: string): string | undefined {
    const held = this.host.storage.holderOf(path);
    if (!held) return undefined;
    const via = held.asParent ? ` (a parent of ${held.served.path ?? held.served.exportName})` : '';
    if (held.mount) return `a host mount${via}`;
    for (const e of this.host.entries()) {
      if (e.config.hardDrives.some((d) => VmStorage.exportName(d) === held.served.exportName)) return `VM '${e.config.name}'${via}`;
    }
    return `export ${held.served.exportName}${via}`;
  }

  async addHard(nameOrId: string, p: AddHardDriveParams): Promise<HardDriveView> {
    const e = this.host.resolve(nameOrId);
    return e.lock.run(async () => {
      const slot = this.pickSlot(e, p);
      this.assertChangeable(e, slot);
      const path = resolve(p.Path);
      this.assertPathFree(path);
      const probed = await this.probe(path);
      if (probed.logicalSectorSize === 4096 && slot.controllerType === 'IDE') {
        throw invalid('ControllerType', `${path} has 4096-byte logical sectors: attach it to a SCSI controller (IDE is 512 only)`, e.config.name);
      }
      const drive: HardDrive = { id: newDriveId(), ...slot, path, maximumIops: p.MaximumIOPS ?? 0, minimumIops: p.MinimumIOPS ?? 0 };
      checkIops(drive.maximumIops, drive.minimumIops, e.config.name);
      // A clustered VM's new drive is written under the same ownership token as the others.
      if (e.fence) this.host.storage.fenceDrives([drive], e.fence);
      if (e.runtime) {
        const spec = await this.host.storage.serveDrive(drive);
        try {
          await e.runtime.hotplugDisk(spec);
        } catch (err) {
          await this.host.storage.stopDrive(drive);
          throw err;
        }
      }
      e.config = { ...e.config, hardDrives: [...e.config.hardDrives, drive] };
      await this.host.persist(e);
      e.bootableDrives.set(drive.id, probed.bootable);
      this.host.event('Information', 'VM_DISK_ADDED', `Hard drive ${path} added at ${slotText(slot)}${e.runtime ? ' (hot-plugged)' : ''}`, e);
      return this.hardView(e, drive);
    });
  }

  private findHard(e: VmEntry, s: SlotParams): HardDrive {
    const slot = { controllerType: s.ControllerType, controllerNumber: s.ControllerNumber, controllerLocation: s.ControllerLocation };
    const d = e.config.hardDrives.find((h) => sameSlot(h, slot));
    if (!d) throw new VmhostError('NOT_FOUND', `VM '${e.config.name}' has no hard drive at ${slotText(slot)}`, { vm: e.config.name });
    return d;
  }

  async removeHard(nameOrId: string, s: SlotParams): Promise<void> {
    const e = this.host.resolve(nameOrId);
    await e.lock.run(async () => {
      const d = this.findHard(e, s);
      this.assertChangeable(e, d);
      if (e.runtime) await e.runtime.unplugDisk(VmStorage.diskId(d));
      await this.host.storage.stopDrive(d);
      e.config = { ...e.config, hardDrives: e.config.hardDrives.filter((h) => h !== d) };
      await this.host.persist(e);
      this.host.event('Information', 'VM_DISK_REMOVED', `Hard drive ${d.path} removed from ${slotText(d)}`, e);
    });
  }

  async setHard(nameOrId: string, p: SetHardDriveParams): Promise<HardDriveView> {
    const e = this.host.resolve(nameOrId);
    return e.lock.run(async () => {
      const d = this.findHard(e, p);
      if (p.MaximumIOPS !== undefined || p.MinimumIOPS !== undefined) assertLegal('SetHardDriveQoS', e.state, e.config.name);
      const next: HardDrive = { ...d, maximumIops: p.MaximumIOPS ?? d.maximumIops, minimumIops: p.MinimumIOPS ?? d.minimumIops };
      checkIops(next.maximumIops, next.minimumIops, e.config.name);
      if (p.Path !== undefined && resolve(p.Path) !== d.path) {
        assertLegal('SetHardDrivePath', e.state, e.config.name);
        next.path = resolve(p.Path);
        this.assertPathFree(next.path, d);
        e.bootableDrives.set(d.id, (await this.probe(next.path)).bootable);
      }
      e.config = { ...e.config, hardDrives: e.config.hardDrives.map((h) => (h === d ? next : h)) };
      await this.host.persist(e);
      // Storage QoS changes take effect at once on a running VM.
      this.host.storage.setQos(next);
      this.host.event('Information', 'VM_DISK_CHANGED', `Hard drive at ${slotText(d)}: ${Object.keys(p).filter((k) => !k.startsWith('Controller')).join(', ')} changed`, e);
      return this.hardView(e, next);
    });
  }

  /**
   * Resize-VHD on a file a running VM holds: the block server resizes the open disk and the
   * guest is told the new size. Returns false when no running VM holds the file.
   */
  async resizeAttached(path: string, newSize: number): Promise<boolean> {
    const abs = resolve(path);
    for (const e of this.host.entries()) {
      const d = e.config.hardDrives.find((h) => h.path === abs);
      if (!d || !e.runtime || !this.host.storage.uri(d)) continue;
      await e.lock.run(async () => {
        const spec = await this.host.storage.serveDrive(d);
        await this.host.storage.server.resize(VmStorage.exportName(d), newSize);
        await e.runtime?.refreshDiskSize(spec, newSize);
      });
      this.host.event('Information', 'VM_DISK_RESIZED', `Hard drive ${abs} resized online to ${newSize} bytes`, e);
      return true;
    }
    return false;
  }

  /** The disk this host serves from `path`; NOT_ATTACHED when none (the caller then reads the file itself). */
  private held(path: string): ServedDisk {
    const served = this.host.storage.servedPath(path);
    if (!served) throw new VmhostError('NOT_ATTACHED', `${path} is not attached to a running VM or mounted on this host`, { path });
    return served;
  }

  /** Get-VHD of a disk file this host serves, from the open disk (its live BAT and size): Attached True. */
  describeHeld(path: string): Promise<VirtualHardDisk> {
    return describeOpenDisk(this.held(path).disk, resolve(path), true);
  }

  /** Test-VHD of a disk file this host serves: the open disk's problems and its parents' files'. */
  testHeld(path: string): Promise<string[]> {
    return testOpenDisk(this.held(path).disk);
  }

  metrics(nameOrId: string): HardDiskMetrics[] {
    const e = this.host.resolve(nameOrId);
    return e.config.hardDrives.map((d) => {
      const c = this.host.storage.counters(d);
      return {
        Path: d.path, ControllerType: d.controllerType, ControllerNumber: d.controllerNumber, ControllerLocation: d.controllerLocation,
        ReadOperations: c?.operations.read ?? 0, WriteOperations: c?.operations.write ?? 0, FlushOperations: c?.operations.flush ?? 0,
        DataRead: c?.bytesRead ?? 0, DataWritten: c?.bytesWritten ?? 0, NormalizedIOCount: c?.normalizedIos ?? 0,
        NormalizedIOPS: c?.normalizedIops ?? 0, AverageLatencyMs: c?.averageLatencyMs ?? 0, Errors: c?.errors ?? 0,
      };
    });
  }

  // ---- DVD drives: changed while the VM is off (media is read-only, opened by QEMU itself) ----

  private dvdView(e: VmEntry, d: DvdDrive): DvdDriveView {
    return {
      VMName: e.config.name, VMId: e.config.id, ComputerName: this.host.computerName, Id: d.id, Name: driveName('DVD Drive', d), Path: d.path,
      ControllerType: d.controllerType, ControllerNumber: d.controllerNumber, ControllerLocation: d.controllerLocation, DvdMediaType: d.path ? 'ISO' : 'None',
    };
  }

  listDvd(nameOrId: string): DvdDriveView[] {
    const e = this.host.resolve(nameOrId);
    return e.config.dvdDrives.map((d) => this.dvdView(e, d));
  }

  async addDvd(nameOrId: string, p: AddDvdDriveParams): Promise<DvdDriveView> {
    const e = this.host.resolve(nameOrId);
    return e.lock.run(async () => {
      assertLegal('AddDvdDrive', e.state, e.config.name);
      const slot = this.pickSlot(e, { ...p, ControllerType: e.config.generation === 1 ? 'IDE' : 'SCSI' });
      const path = p.Path ? resolve(p.Path) : null;
      if (path) await VmStorage.probe(path);
      const drive: DvdDrive = { id: newDriveId(), ...slot, path };
      e.config = { ...e.config, dvdDrives: [...e.config.dvdDrives, drive] };
      await this.host.persist(e);
      this.host.event('Information', 'VM_DVD_ADDED', `DVD drive added at ${slotText(slot)}${path ? ` with ${path}` : ''}`, e);
      return this.dvdView(e, drive);
    });
  }

  private findDvd(e: VmEntry, s: { ControllerNumber: number; ControllerLocation: number }): DvdDrive {
    const d = e.config.dvdDrives.find((x) => x.controllerNumber === s.ControllerNumber && x.controllerLocation === s.ControllerLocation);
    if (!d) throw new VmhostError('NOT_FOUND', `VM '${e.config.name}' has no DVD drive at controller ${s.ControllerNumber} location ${s.ControllerLocation}`, { vm: e.config.name });
    return d;
  }

  /** Set-VMDvdDrive -Path: insert, change or (null) eject the ISO — also while the VM runs, as in Hyper-V. */
  async setDvd(nameOrId: string, p: SetDvdDriveParams): Promise<DvdDriveView> {
    const e = this.host.resolve(nameOrId);
    return e.lock.run(async () => {
      const d = this.findDvd(e, p);
      const path = p.Path ? resolve(p.Path) : null;
      if (path) await VmStorage.probe(path);
      assertLegal('SetDvdMedia', e.state, e.config.name);
      const next: DvdDrive = { ...d, path };
      const config = { ...e.config, dvdDrives: e.config.dvdDrives.map((x) => (x === d ? next : x)) };
      // A running QEMU opens the ISO itself, long after it dropped root.
      const qemuUser = this.host.qemuUser;
      if (e.runtime && path && qemuUser && !(await qemuUserCanRead(qemuUser, path))) {
        throw invalid('Path', `${path} is not readable by ${qemuUser.name}, the user VM '${e.config.name}' runs as (give that user read access, or insert it while the VM is off)`, e.config.name);
      }
      // The guest sees the change first; a failed QMP change leaves the config as it was.
      if (e.runtime) await e.runtime.changeDvd(VmStorage.dvdId(d), path);
      await this.host.persistNext(e, config).catch(async (err: unknown) => {
        if (e.runtime) await e.runtime.changeDvd(VmStorage.dvdId(d), d.path).catch(() => undefined);
        throw err;
      });
      this.host.event('Information', 'VM_DVD_CHANGED', `${slotText(d)}: ${path ? `media ${path} inserted` : 'media ejected'}${e.runtime ? ' (while running)' : ''}`, e);
      return this.dvdView(e, next);
    });
  }

  async removeDvd(nameOrId: string, s: { ControllerNumber: number; ControllerLocation: number }): Promise<void> {
    const e = this.host.resolve(nameOrId);
    await e.lock.run(async () => {
      assertLegal('RemoveDvdDrive', e.state, e.config.name);
      const d = this.findDvd(e, s);
      e.config = { ...e.config, dvdDrives: e.config.dvdDrives.filter((x) => x !== d) };
      await this.host.persist(e);
      this.host.event('Information', 'VM_DVD_REMOVED', `DVD drive removed from ${slotText(d)}`, e);
    });
  }
}
