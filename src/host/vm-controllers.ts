// The VM's controllers and legacy ports, with Hyper-V's rules: Get-/Add-/Remove-VMScsiController
// (up to 4; vmhost keeps one so disks can always hot-plug), Get-VMIdeController (generation 1's
// two), Get-/Set-VMFloppyDiskDrive (generation 1, a .vfd in drive A) and Get-/Set-VMComPort
// (COM 1 is vmhost's serial console; COM 2 is a unix socket QEMU listens on — Hyper-V's named
// pipe). Every change needs the VM off, as in Hyper-V 2012 R2.
import { open, stat } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { VmhostError } from '../common/index.ts';
import { assertLegal } from './vm-state.ts';
import { FLOPPY_ID, hasBootSignature } from './boot-order.ts';
import { IDE_CONTROLLERS, SCSI_CONTROLLERS, slotText, type DriveSlot } from './drives.ts';
import type { EventLevel } from './events.ts';
import { invalid } from './invalid-argument.ts';
import type { VmConfig } from './vm-config.ts';
import type { VmEntry } from './vm-entry.ts';

export interface ControllerHost {
  resolve(nameOrId: string): VmEntry;
  persistNext(e: VmEntry, next: VmConfig): Promise<void>;
  event(level: EventLevel, code: string, message: string, e?: VmEntry): void;
  readonly computerName: string;
}

export interface ControllerView { VMName: string; VMId: string; ComputerName: string; Name: string; ControllerNumber: number; Drives: string[] }
export interface FloppyView { VMName: string; VMId: string; ComputerName: string; Name: string; Path: string | null }
export interface ComPortView { VMName: string; VMId: string; ComputerName: string; Name: string; Path: string; DebuggerMode: 'Off' }

/** 3½-inch floppies: 1.44 MB (what New-VFD makes) and 2.88 MB. */
const FLOPPY_SIZES = [1_474_560, 2_949_120];
/** sun_path holds 107 bytes and a NUL. */
const MAX_SOCKET_PATH = 107;

export class VmControllers {
  constructor(private readonly host: ControllerHost) {}

  private base(e: VmEntry) {
    return { VMName: e.config.name, VMId: e.config.id, ComputerName: this.host.computerName };
  }


  private drivesOn(e: VmEntry, type: 'IDE' | 'SCSI', n: number): string[] {
    const on = (d: DriveSlot) => d.controllerType === type && d.controllerNumber === n;
    return [
      ...e.config.hardDrives.filter(on).map((d) => `Hard Drive on ${slotText(d)}`),
      ...e.config.dvdDrives.filter(on).map((d) => `DVD Drive on ${slotText(d)}`),
    ];
  }

  scsi(nameOrId: string): ControllerView[] {
    const e = this.host.resolve(nameOrId);
    return Array.from({ length: e.config.scsiControllers }, (_, n) => ({ ...this.base(e), Name: 'SCSI Controller', ControllerNumber: n, Drives: this.drivesOn(e, 'SCSI', n) }));
  }

  ide(nameOrId: string): ControllerView[] {
    const e = this.host.resolve(nameOrId);
    if (e.config.generation !== 1) throw invalid('VMName', `'${e.config.name}' is a generation 2 VM: it has no IDE controller`, e.config.name);
    return Array.from({ length: IDE_CONTROLLERS }, (_, n) => ({ ...this.base(e), Name: 'IDE Controller', ControllerNumber: n, Drives: this.drivesOn(e, 'IDE', n) }));
  }

  async addScsi(nameOrId: string): Promise<ControllerView> {
    const e = this.host.resolve(nameOrId);
    return e.lock.run(async () => {
      assertLegal('SetControllers', e.state, e.config.name);
      if (e.config.scsiControllers >= SCSI_CONTROLLERS) throw invalid('VMName', `a VM has at most ${SCSI_CONTROLLERS} SCSI controllers`, e.config.name);
      const n = e.config.scsiControllers;
      await this.host.persistNext(e, { ...e.config, scsiControllers: n + 1 });
      this.host.event('Information', 'VM_CONTROLLER_ADDED', `SCSI controller ${n} added`, e);
      return this.scsi(e.config.id)[n]!;
    });
  }

  /** Remove one SCSI controller; drives on higher-numbered controllers move down one number, as Hyper-V renumbers. */
  async removeScsi(nameOrId: string, n: number): Promise<void> {
    const e = this.host.resolve(nameOrId);
    await e.lock.run(async () => {
      assertLegal('SetControllers', e.state, e.config.name);
      if (!Number.isInteger(n) || n < 0 || n >= e.config.scsiControllers) throw invalid('ControllerNumber', `VM '${e.config.name}' has no SCSI controller ${n}`, e.config.name);
      if (e.config.scsiControllers === 1) throw invalid('ControllerNumber', 'vmhost keeps one SCSI controller, so disks can always be hot-plugged', e.config.name);
      const held = this.drivesOn(e, 'SCSI', n);
      if (held.length > 0) throw new VmhostError('INVALID_STATE', `SCSI controller ${n} of VM '${e.config.name}' still holds ${held.join(', ')}: remove them first`, { vm: e.config.name });
      const move = <T extends DriveSlot>(d: T): T => (d.controllerType === 'SCSI' && d.controllerNumber > n ? { ...d, controllerNumber: d.controllerNumber - 1 } : d);
      await this.host.persistNext(e, {
        ...e.config, scsiControllers: e.config.scsiControllers - 1, hardDrives: e.config.hardDrives.map(move), dvdDrives: e.config.dvdDrives.map(move),
      });
      this.host.event('Information', 'VM_CONTROLLER_REMOVED', `SCSI controller ${n} removed`, e);
    });
  }

  floppy(nameOrId: string): FloppyView {
    const e = this.host.resolve(nameOrId);
    if (e.config.generation !== 1) throw invalid('VMName', `'${e.config.name}' is a generation 2 VM: it has no floppy drive`, e.config.name);
    return { ...this.base(e), Name: 'Diskette Drive', Path: e.config.floppyPath };
  }

  async setFloppy(nameOrId: string, path: string | null): Promise<FloppyView> {
    const e = this.host.resolve(nameOrId);
    return e.lock.run(async () => {
      this.floppy(nameOrId);
      assertLegal('SetControllers', e.state, e.config.name);
      const abs = path === null ? null : resolve(path);
      if (abs !== null) {
        const s = await stat(abs).catch(() => undefined);
        if (!s?.isFile()) throw invalid('Path', `no such file: ${abs}`, e.config.name);
        if (!FLOPPY_SIZES.includes(s.size)) throw invalid('Path', `${abs} is ${s.size} bytes, not a virtual floppy disk (1,474,560 or 2,949,120; New-VFD makes one)`, e.config.name);
      }
      await this.host.persistNext(e, { ...e.config, floppyPath: abs });
      if (abs !== null) e.bootableDrives.set(FLOPPY_ID, await floppyIsBootable(abs));
      this.host.event('Information', 'VM_FLOPPY_CHANGED', abs ? `Floppy disk ${abs} inserted` : 'Floppy disk removed', e);
      return this.floppy(nameOrId);
    });
  }

  comPorts(nameOrId: string): ComPortView[] {
    const e = this.host.resolve(nameOrId);
    return [
      { ...this.base(e), Name: 'COM 1', Path: e.paths.serialSocket, DebuggerMode: 'Off' },
      { ...this.base(e), Name: 'COM 2', Path: e.config.com2Path ?? '', DebuggerMode: 'Off' },
    ];
  }

  async setComPort(nameOrId: string, number: number, path: string): Promise<ComPortView> {
    const e = this.host.resolve(nameOrId);
    return e.lock.run(async () => {
      if (number === 1) throw invalid('Number', 'COM 1 is vmhost\'s serial console (Get-VMConsole, the web console); use COM 2', e.config.name);
      if (number !== 2) throw invalid('Number', `${number} is not a COM port (1 or 2)`, e.config.name);
      assertLegal('SetControllers', e.state, e.config.name);
      let socket: string | null = null;
      if (path !== '') {
        if (!isAbsolute(path)) throw invalid('Path', `must be an absolute path of a unix socket QEMU will listen on (got '${path}')`, e.config.name);
        if (Buffer.byteLength(path) > MAX_SOCKET_PATH) throw invalid('Path', `is longer than ${MAX_SOCKET_PATH} bytes (the unix socket limit)`, e.config.name);
        if (!(await stat(dirname(path)).then((s) => s.isDirectory(), () => false))) throw invalid('Path', `the folder ${dirname(path)} does not exist`, e.config.name);
        socket = path;
      }
      await this.host.persistNext(e, { ...e.config, com2Path: socket });
      this.host.event('Information', 'VM_COM_PORT_CHANGED', socket ? `COM 2 listens on ${socket}` : 'COM 2 disconnected', e);
      return this.comPorts(nameOrId)[1]!;
    });
  }
}

/** Whether a floppy image's first sector carries a boot signature (read again at every start). */
export async function floppyIsBootable(path: string): Promise<boolean> {
  const buf = new Uint8Array(512);
  const fh = await open(path, 'r');
  try { await fh.read(buf, 0, 512, 0); } finally { await fh.close(); }
  return hasBootSignature(buf);
}
