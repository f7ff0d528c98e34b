// What a VM boots and in which order: pure functions over the VM's config, so the rules are
// unit-tested without QEMU. Hyper-V's two models:
// - Generation 1 (BIOS): a startup order of device *classes* (`Set-VMBios -StartupOrder
//   CD,IDE,LegacyNetworkAdapter,Floppy`); SeaBIOS boots IDE disks, IDE DVDs, legacy (emulated)
//   network adapters and the floppy — never SCSI disks or synthetic adapters. A floppy with a
//   boot sector counts as something to boot, like a disk.
// - Generation 2 (UEFI): an ordered list of *devices* (`Set-VMFirmware -BootOrder`), any
//   SCSI disk, SCSI DVD or network adapter.
// The order becomes QEMU `bootindex` values (with `-boot strict=on`, so nothing unlisted is
// tried, as in Hyper-V). A VM with nothing the firmware could boot runs the built-in test
// guest by direct kernel boot instead (the demo and most tests use that). "Nothing to boot":
// no DVD media, no network boot placed first (generation 2) or legacy adapter (generation 1),
// and no hard disk whose first sector carries a boot signature (0x55AA, which every MBR and
// every GPT's protective MBR has): a blank data disk is not something a firmware boots.
import { VmhostError } from '../common/index.ts';
import { invalid } from './invalid-argument.ts';
import { slotText } from './drives.ts';
import type { NetworkAdapter, VmConfig } from './vm-config.ts';

export const BIOS_DEVICES = ['CD', 'IDE', 'LegacyNetworkAdapter', 'Floppy'] as const;
/** The key of the floppy drive (drive A) among the bootable devices of a generation 1 VM. */
export const FLOPPY_ID = 'floppy';
export type BiosDevice = (typeof BIOS_DEVICES)[number];
export const DEFAULT_STARTUP_ORDER: readonly BiosDevice[] = BIOS_DEVICES;

/** New-VM -BootDevice values (Hyper-V's BootDevice enum). */
export const BOOT_DEVICES = ['CD', 'Floppy', 'LegacyNetworkAdapter', 'IDE', 'NetworkAdapter', 'VHD'] as const;
export type BootDevice = (typeof BOOT_DEVICES)[number];

/** What a start boots: the user's devices through the firmware, the test guest, or a kernel given directly. */
export type BootSourceKind = 'Firmware' | 'TestGuest' | 'Kernel';

/** One device in a generation 2 boot order, as Get-VMFirmware shows it (Hyper-V's VMBootSource). */
export interface BootEntryView {
  BootType: 'Drive' | 'Network';
  Device: string;
  Description: string;
  /** vmhost: how to name this device in -BootOrder / -FirstBootDevice. */
  DeviceRef: string;
  Id: string;
}

type Device =
  | { kind: 'HardDrive'; id: string; ref: string; name: string }
  | { kind: 'DvdDrive'; id: string; ref: string; name: string; hasMedia: boolean }
  | { kind: 'NetworkAdapter'; id: string; ref: string; name: string; adapter: NetworkAdapter };

/** Every device of a generation 2 VM that can be in its boot order, in default order. */
function devices(c: VmConfig): Device[] {
  const bySlot = <T extends { controllerNumber: number; controllerLocation: number }>(a: T, b: T) =>
    a.controllerNumber - b.controllerNumber || a.controllerLocation - b.controllerLocation;
  return [
    ...[...c.dvdDrives].sort(bySlot).map((d): Device => ({
      kind: 'DvdDrive', id: d.id, ref: `${d.controllerType}:${d.controllerNumber}:${d.controllerLocation}`,
      name: `DVD Drive on ${d.controllerType} controller number ${d.controllerNumber} at location ${d.controllerLocation}`, hasMedia: d.path !== null,
    })),
    ...[...c.hardDrives].sort(bySlot).map((d): Device => ({
      kind: 'HardDrive', id: d.id, ref: `${d.controllerType}:${d.controllerNumber}:${d.controllerLocation}`,
      name: `Hard Drive on ${d.controllerType} controller number ${d.controllerNumber} at location ${d.controllerLocation}`,
    })),
    ...c.networkAdapters.map((a): Device => ({ kind: 'NetworkAdapter', id: a.id, ref: `NetworkAdapter:${a.name}`, name: a.name, adapter: a })),
  ];
}

/**
 * The generation 2 boot order in effect: the stored order (devices that no longer exist are
 * skipped), then devices added since, in the default order (DVDs, disks, adapters) — Hyper-V
 * appends new devices to the end as well.
 */
function effectiveOrder(c: VmConfig): Device[] {
  const all = devices(c);
  const listed = c.bootOrder.map((id) => all.find((d) => d.id === id)).filter((d): d is Device => d !== undefined);
  return [...listed, ...all.filter((d) => !listed.includes(d))];
}

/** Whether the firmware has something to boot; otherwise the test guest runs (see file comment). */
export function bootSource(c: VmConfig, bootable: (driveId: string) => boolean): BootSourceKind {
  if (c.boot.kind === 'Kernel') return 'Kernel';
  if (c.hardDrives.some((d) => bootable(d.id)) || c.dvdDrives.some((d) => d.path !== null)) return 'Firmware';
  if (c.generation === 1 && c.floppyPath !== null && bootable(FLOPPY_ID)) return 'Firmware';
  // Every generation 2 VM has its adapters in the boot order; only one the admin placed first
  // (-FirstBootDevice, -BootOrder, New-VM -BootDevice NetworkAdapter) means "network boot".
  if (c.generation === 2) {
    const all = devices(c);
    const firstListed = c.bootOrder.map((id) => all.find((d) => d.id === id)).find((d) => d !== undefined);
    return firstListed?.kind === 'NetworkAdapter' ? 'Firmware' : 'TestGuest';
  }
  return c.bios.startupOrder.includes('LegacyNetworkAdapter') && c.networkAdapters.some((a) => a.isLegacy) ? 'Firmware' : 'TestGuest';
}

/** bootindex per device id (drive or adapter id) for a firmware boot; empty for the other sources. */
export function bootIndexes(c: VmConfig, bootable: (driveId: string) => boolean): Map<string, number> {
  const out = new Map<string, number>();
  if (bootSource(c, bootable) !== 'Firmware') return out;
  if (c.generation === 2) {
    effectiveOrder(c).forEach((d, i) => out.set(d.id, i + 1));
    return out;
  }
  const bySlot = <T extends { controllerNumber: number; controllerLocation: number }>(a: T, b: T) =>
    a.controllerNumber - b.controllerNumber || a.controllerLocation - b.controllerLocation;
  let next = 1;
  for (const cls of c.bios.startupOrder) {
    const ids: string[] = [];
    if (cls === 'CD') ids.push(...c.dvdDrives.filter((d) => d.controllerType === 'IDE').sort(bySlot).map((d) => d.id));
    if (cls === 'IDE') ids.push(...c.hardDrives.filter((d) => d.controllerType === 'IDE').sort(bySlot).map((d) => d.id));
    if (cls === 'LegacyNetworkAdapter') ids.push(...c.networkAdapters.filter((a) => a.isLegacy).map((a) => a.id));
    if (cls === 'Floppy' && c.floppyPath !== null) ids.push(FLOPPY_ID);
    for (const id of ids) out.set(id, next++);
  }
  return out;
}

/** Get-VMFirmware's BootOrder. */
export function bootOrderView(c: VmConfig): BootEntryView[] {
  return effectiveOrder(c).map((d) => ({
    BootType: d.kind === 'NetworkAdapter' ? 'Network' : 'Drive',
    Device: d.kind === 'NetworkAdapter' ? `Network Adapter '${d.name}'` : d.name,
    Description: d.kind === 'NetworkAdapter' ? `EFI Network (${d.adapter.mac})` : d.kind === 'DvdDrive' ? 'EFI SCSI Device (DVD)' : 'EFI SCSI Device',
    DeviceRef: d.ref,
    Id: d.id,
  }));
}

/**
 * Resolve device references given by an admin (`SCSI:0:1`, `NetworkAdapter:<name>`,
 * `NetworkAdapter` when there is one, or a drive/adapter Id) to device ids; an unknown
 * device is an error naming it.
 */
export function resolveBootDevices(c: VmConfig, refs: string[], param: string): string[] {
  if (c.generation !== 2) throw invalid(param, 'generation 1 VMs boot by device class: use Set-VMBios -StartupOrder', c.name);
  const all = devices(c);
  const ids = refs.map((raw) => {
    const ref = raw.trim();
    const lower = ref.toLowerCase();
    const byId = all.find((d) => d.id.toLowerCase() === lower);
    if (byId) return byId.id;
    const slot = /^(SCSI|IDE)\s*[: ]\s*(\d+)\s*[:.]\s*(\d+)$/i.exec(ref);
    if (slot) {
      const found = all.find((d) => d.kind !== 'NetworkAdapter' && d.ref.toLowerCase() === `${slot[1]}:${slot[2]}:${slot[3]}`.toLowerCase());
      if (!found) throw invalid(param, `VM '${c.name}' has no drive at ${slotText({ controllerType: slot[1]!.toUpperCase() as 'SCSI', controllerNumber: Number(slot[2]), controllerLocation: Number(slot[3]) })}`, c.name);
      return found.id;
    }
    const nic = /^NetworkAdapter(?::(.+))?$/i.exec(ref);
    if (nic) {
      const adapters = all.filter((d) => d.kind === 'NetworkAdapter');
      const matches = nic[1] === undefined ? adapters : adapters.filter((d) => d.name.toLowerCase() === nic[1]!.toLowerCase());
      if (matches.length === 0) throw invalid(param, `VM '${c.name}' has no network adapter${nic[1] === undefined ? '' : ` named '${nic[1]}'`}`, c.name);
      if (matches.length > 1) throw invalid(param, `VM '${c.name}' has ${matches.length} network adapters${nic[1] === undefined ? '' : ` named '${nic[1]}'`}: name one (NetworkAdapter:<name>) or give its Id`, c.name);
      return matches[0]!.id;
    }
    throw invalid(param, `'${ref}' names no device: use SCSI:<controller>:<location>, NetworkAdapter[:<name>] or a device Id (Get-VMFirmware shows each DeviceRef)`, c.name);
  });
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup) throw invalid(param, `device ${all.find((d) => d.id === dup)!.ref} is listed twice`, c.name);
  return ids;
}

/** Set-VMFirmware -FirstBootDevice: that device first, the rest in their current order. */
export function withFirstBootDevice(c: VmConfig, ref: string): string[] {
  const [first] = resolveBootDevices(c, [ref], 'FirstBootDevice');
  return [first!, ...effectiveOrder(c).map((d) => d.id).filter((id) => id !== first)];
}

/** Set-VMBios -StartupOrder: exactly the four classes, each once, names matched case-insensitively. */
export function parseStartupOrder(values: string[], vm: string): BiosDevice[] {
  const order = values.map((v) => {
    const found = BIOS_DEVICES.find((d) => d.toLowerCase() === v.trim().toLowerCase());
    if (!found) throw invalid('StartupOrder', `'${v}' is not a startup device (${BIOS_DEVICES.join(', ')})`, vm);
    return found;
  });
  if (order.length !== BIOS_DEVICES.length || new Set(order).size !== order.length) {
    throw invalid('StartupOrder', `must list each of ${BIOS_DEVICES.join(', ')} exactly once (got ${values.join(', ')})`, vm);
  }
  return order;
}

/** A generation 1 startup order with one class moved to the front (New-VM -BootDevice). */
export function startupOrderWithFirst(order: readonly BiosDevice[], first: BiosDevice): BiosDevice[] {
  return [first, ...order.filter((d) => d !== first)];
}

/** A first sector a BIOS or UEFI firmware would boot from: the MBR boot signature. */
export function hasBootSignature(sector0: Uint8Array): boolean {
  return sector0.length >= 512 && sector0[510] === 0x55 && sector0[511] === 0xaa;
}

/** Check a stored boot configuration read from disk. */
export function checkBootConfig(c: VmConfig): void {
  if (c.generation === 1) parseStartupOrder(c.bios.startupOrder, c.name);
  if (!Array.isArray(c.bootOrder) || c.bootOrder.some((id) => typeof id !== 'string')) {
    throw new VmhostError('INVALID_ARGUMENT', `VM '${c.name}': bootOrder must be a list of device ids`, { vm: c.name });
  }
}
