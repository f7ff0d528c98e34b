// Get-/Set-VMFirmware (generation 2: secure boot, boot order) and Get-/Set-VMBios
// (generation 1: startup order, NumLock). Boot order changes are allowed while the VM runs
// and take effect on its next boot, as in Hyper-V; secure boot changes need the VM off.
import { VmhostError } from '../common/index.ts';
import {
  bootOrderView, parseStartupOrder, resolveBootDevices, withFirstBootDevice, type BiosDevice, type BootEntryView,
} from './boot-order.ts';
import type { EventLevel } from './events.ts';
import { assertLegal } from './vm-state.ts';
import type { VmConfig } from './vm-config.ts';
import type { VmEntry } from './vm-entry.ts';

export interface FirmwareHost {
  resolve(nameOrId: string): VmEntry;
  persist(e: VmEntry, next: VmConfig): Promise<void>;
  event(level: EventLevel, code: string, message: string, e?: VmEntry): void;
  readonly computerName: string;
}

export interface FirmwareView {
  VMName: string; VMId: string; ComputerName: string;
  SecureBoot: 'On' | 'Off';
  PreferredNetworkBootProtocol: 'IPv4';
  BootOrder: BootEntryView[];
}

export interface BiosView {
  VMName: string; VMId: string; ComputerName: string;
  StartupOrder: BiosDevice[];
  NumLockEnabled: boolean;
}

export interface SetFirmwareParams { EnableSecureBoot?: boolean; BootOrder?: string[]; FirstBootDevice?: string }
export interface SetBiosParams { StartupOrder?: string[]; EnableNumLock?: boolean }

export class VmFirmware {
  constructor(private readonly host: FirmwareHost) {}

  private generation(e: VmEntry, want: 1 | 2, cmdlet: string): void {
    if (e.config.generation === want) return;
    const hint = want === 2 ? 'it has a BIOS: use Get-/Set-VMBios' : 'it has UEFI firmware: use Get-/Set-VMFirmware';
    throw new VmhostError('INVALID_ARGUMENT', `${cmdlet}: '${e.config.name}' is a generation ${e.config.generation} VM (${hint})`, { vm: e.config.name });
  }

  firmware(nameOrId: string): FirmwareView {
    const e = this.host.resolve(nameOrId);
    this.generation(e, 2, 'Get-VMFirmware');
    return this.firmwareView(e);
  }

  private firmwareView(e: VmEntry): FirmwareView {
    return {
      VMName: e.config.name, VMId: e.config.id, ComputerName: this.host.computerName,
      SecureBoot: e.config.secureBoot ? 'On' : 'Off', PreferredNetworkBootProtocol: 'IPv4', BootOrder: bootOrderView(e.config),
    };
  }

  async setFirmware(nameOrId: string, p: SetFirmwareParams): Promise<FirmwareView> {
    const e = this.host.resolve(nameOrId);
    return e.lock.run(async () => {
      this.generation(e, 2, 'Set-VMFirmware');
      if (p.BootOrder !== undefined && p.FirstBootDevice !== undefined) {
        throw new VmhostError('INVALID_ARGUMENT', 'Set-VMFirmware: give -BootOrder or -FirstBootDevice, not both', { vm: e.config.name });
      }
      const next: VmConfig = { ...e.config };
      if (p.EnableSecureBoot !== undefined) {
        assertLegal('SetHardware', e.state, e.config.name);
        next.secureBoot = p.EnableSecureBoot;
      }
      if (p.BootOrder !== undefined || p.FirstBootDevice !== undefined) assertLegal('SetBootOrder', e.state, e.config.name);
      if (p.BootOrder !== undefined) next.bootOrder = resolveBootDevices(e.config, p.BootOrder, 'BootOrder');
      if (p.FirstBootDevice !== undefined) next.bootOrder = withFirstBootDevice(e.config, p.FirstBootDevice);
      await this.host.persist(e, next);
      const what = [p.EnableSecureBoot !== undefined ? `secure boot ${p.EnableSecureBoot ? 'On' : 'Off'}` : '', p.BootOrder || p.FirstBootDevice ? `boot order ${bootOrderView(next).map((b) => b.DeviceRef).join(', ')}` : '']
        .filter(Boolean).join('; ');
      this.host.event('Information', 'VM_FIRMWARE_CHANGED', `Firmware settings changed: ${what}${e.state === 'Off' ? '' : ' (from the next boot)'}`, e);
      return this.firmwareView(e);
    });
  }

  bios(nameOrId: string): BiosView {
    const e = this.host.resolve(nameOrId);
    this.generation(e, 1, 'Get-VMBios');
    return this.biosView(e);
  }

  private biosView(e: VmEntry): BiosView {
    return { VMName: e.config.name, VMId: e.config.id, ComputerName: this.host.computerName, StartupOrder: [...e.config.bios.startupOrder], NumLockEnabled: e.config.bios.numLockEnabled };
  }

  async setBios(nameOrId: string, p: SetBiosParams): Promise<BiosView> {
    const e = this.host.resolve(nameOrId);
    return e.lock.run(async () => {
      this.generation(e, 1, 'Set-VMBios');
      assertLegal('SetBootOrder', e.state, e.config.name);
      const bios = { ...e.config.bios };
      if (p.StartupOrder !== undefined) bios.startupOrder = parseStartupOrder(p.StartupOrder, e.config.name);
      if (p.EnableNumLock !== undefined) bios.numLockEnabled = p.EnableNumLock;
      await this.host.persist(e, { ...e.config, bios });
      this.host.event('Information', 'VM_BIOS_CHANGED', `BIOS settings changed: startup order ${bios.startupOrder.join(', ')}, NumLock ${bios.numLockEnabled ? 'on' : 'off'}${e.state === 'Off' ? '' : ' (from the next boot)'}`, e);
      return this.biosView(e);
    });
  }
}
