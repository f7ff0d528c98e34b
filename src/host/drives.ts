// Virtual drives of a VM (hard disks and DVD drives) and the slot rules Hyper-V enforces:
// generation 1 has two IDE controllers with two locations each (boot disks live there) and
// optional SCSI; generation 2 has SCSI only. IDE changes need the VM off; SCSI drives can be
// added and removed while it runs (hot-plug).
import { randomUUID } from 'node:crypto';
import { VmhostError } from '../common/index.ts';
import { invalid } from './invalid-argument.ts';
import type { Generation } from './vm-config.ts';

export type ControllerType = 'IDE' | 'SCSI';

export interface DriveSlot {
  controllerType: ControllerType;
  controllerNumber: number;
  controllerLocation: number;
}

export interface HardDrive extends DriveSlot {
  id: string;
  path: string;
  /** Normalized IOPS (8 KB units); 0 = no limit / no reservation. */
  maximumIops: number;
  minimumIops: number;
}

export interface DvdDrive extends DriveSlot {
  id: string;
  /** ISO image, or null for an empty drive. */
  path: string | null;
}

export const IDE_CONTROLLERS = 2;
export const IDE_LOCATIONS = 2;
export const SCSI_CONTROLLERS = 4;
export const SCSI_LOCATIONS = 64;
export const IOPS_MAX = 1_000_000_000;

export function checkSlot(slot: DriveSlot, generation: Generation, vm: string): void {
  if (slot.controllerType === 'IDE') {
    if (generation === 2) throw invalid('ControllerType', 'generation 2 VMs have no IDE controller; use SCSI', vm);
    if (!inRange(slot.controllerNumber, IDE_CONTROLLERS)) throw invalid('ControllerNumber', `IDE controller ${slot.controllerNumber} does not exist (0–1)`, vm);
    if (!inRange(slot.controllerLocation, IDE_LOCATIONS)) throw invalid('ControllerLocation', `IDE location ${slot.controllerLocation} does not exist (0–1)`, vm);
  } else {
    if (!inRange(slot.controllerNumber, SCSI_CONTROLLERS)) throw invalid('ControllerNumber', `SCSI controller ${slot.controllerNumber} does not exist (0–3)`, vm);
    if (!inRange(slot.controllerLocation, SCSI_LOCATIONS)) throw invalid('ControllerLocation', `SCSI location ${slot.controllerLocation} does not exist (0–63)`, vm);
  }
}

function inRange(n: number, count: number): boolean {
  return Number.isInteger(n) && n >= 0 && n < count;
}

export function sameSlot(a: DriveSlot, b: DriveSlot): boolean {
  return a.controllerType === b.controllerType && a.controllerNumber === b.controllerNumber && a.controllerLocation === b.controllerLocation;
}

/** The first free slot of a controller type, as Hyper-V picks when none is given. */
export function freeSlot(type: ControllerType, used: DriveSlot[], vm: string, controllerNumber?: number, scsiControllers = SCSI_CONTROLLERS): DriveSlot {
  const controllers = type === 'IDE' ? IDE_CONTROLLERS : scsiControllers;
  const locations = type === 'IDE' ? IDE_LOCATIONS : SCSI_LOCATIONS;
  for (let c = controllerNumber ?? 0; c < (controllerNumber === undefined ? controllers : controllerNumber + 1); c++) {
    for (let l = 0; l < locations; l++) {
      const slot = { controllerType: type, controllerNumber: c, controllerLocation: l };
      if (!used.some((u) => sameSlot(u, slot))) return slot;
    }
  }
  throw new VmhostError('INVALID_ARGUMENT', `no free ${type} slot left on VM '${vm}'`, { vm });
}

export function checkIops(max: number, min: number, vm: string): void {
  for (const [name, v] of [['MaximumIOPS', max], ['MinimumIOPS', min]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > IOPS_MAX) throw invalid(name, `${v} is outside 0–${IOPS_MAX}`, vm);
  }
  if (max > 0 && min > max) throw invalid('MinimumIOPS', `${min} is above MaximumIOPS ${max}`, vm);
}

export function newDriveId(): string {
  return randomUUID();
}

export function slotText(s: DriveSlot): string {
  return `${s.controllerType} ${s.controllerNumber}:${s.controllerLocation}`;
}
