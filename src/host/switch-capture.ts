// Packet capture through the daemon (Start-/Stop-VMSwitchCapture, a vmhost extension: Hyper-V
// 2012 R2 has no capture cmdlet). The switch writes the pcap itself (src/switch capture.ts);
// this file checks the file the caller names, on the daemon's host: an absolute path in an
// existing directory, never a directory, and an existing file only when -Force says overwrite.
// The target is a whole switch or one VM adapter's port on it.
import { stat } from 'node:fs/promises';
import { dirname, isAbsolute } from 'node:path';
import { VmhostError } from '../common/index.ts';
import { DEFAULT_CAPTURE_MAX_BYTES, type VirtualSwitch } from '../switch/index.ts';
import { invalid } from './invalid-argument.ts';
import { pickAdapters, type NetHost } from './net-host.ts';
import type { SwitchRegistry } from './switch-registry.ts';

export interface StartCaptureParams { VMName?: string; VMNetworkAdapterName?: string; Path: string; Force?: boolean; MaxBytes?: number }
export interface CaptureTargetParams { VMName?: string; VMNetworkAdapterName?: string }

export async function checkCapturePath(path: string, force: boolean): Promise<void> {
  if (!isAbsolute(path)) throw invalid('Path', `'${path}' is not an absolute path`);
  const dir = await stat(dirname(path)).catch(() => null);
  if (!dir?.isDirectory()) throw invalid('Path', `directory '${dirname(path)}' does not exist`);
  const file = await stat(path).catch(() => null);
  if (file?.isDirectory()) throw invalid('Path', `'${path}' is a directory`);
  if (file && !force) throw new VmhostError('ALREADY_EXISTS', `The file '${path}' already exists; use -Force to overwrite it`, { path });
}

/** Start-/Stop-VMSwitchCapture on the host's switches. */
export class SwitchCaptures {
  constructor(private readonly host: NetHost, private readonly registry: SwitchRegistry) {}

  /** The switch (no VMName) or the one port of the VM's adapter on this switch. */
  private target(switchName: string, p: CaptureTargetParams): { sw: VirtualSwitch; port: string | null; what: string } {
    const s = this.registry.slot(switchName);
    const swName = s.sw.settings.name;
    if (p.VMName === undefined) {
      if (p.VMNetworkAdapterName !== undefined) throw invalid('VMNetworkAdapterName', '-VMNetworkAdapterName needs -VMName');
      return { sw: s.sw, port: null, what: `switch '${swName}'` };
    }
    const e = this.host.resolve(p.VMName);
    const on = pickAdapters(e, p.VMNetworkAdapterName).filter((a) => this.registry.portOf(a) === s);
    if (on.length === 0) throw invalid('VMName', `VM '${e.config.name}' has no network adapter${p.VMNetworkAdapterName ? ` named '${p.VMNetworkAdapterName}'` : ''} connected to switch '${swName}'`);
    if (on.length > 1) throw invalid('VMNetworkAdapterName', `VM '${e.config.name}' has ${on.length} adapters on switch '${swName}'; name one`);
    return { sw: s.sw, port: on[0]!.id, what: `adapter '${on[0]!.name}' of VM '${e.config.name}' on switch '${swName}'` };
  }

  async start(switchName: string, p: StartCaptureParams): Promise<Record<string, unknown>> {
    const t = this.target(switchName, p);
    await checkCapturePath(p.Path, p.Force ?? false);
    const maxBytes = p.MaxBytes ?? DEFAULT_CAPTURE_MAX_BYTES;
    try {
      t.sw.startCapture(t.port, p.Path, { maxBytes, overwrite: p.Force ?? false });
    } catch (e) {
      if (e instanceof VmhostError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw new VmhostError('ALREADY_EXISTS', `The file '${p.Path}' already exists; use -Force to overwrite it`, { path: p.Path });
      const why = code === 'ELOOP' ? 'it is a symbolic link' : (e as Error).message;
      throw new VmhostError('IO_ERROR', `Cannot write the capture file '${p.Path}': ${why}`, { path: p.Path }, { cause: e });
    }
    this.host.event('Information', 'SWITCH_CAPTURE_STARTED', `Packet capture of ${t.what} started into ${p.Path} (at most ${maxBytes} bytes)`);
    return { SwitchName: t.sw.settings.name, VMName: p.VMName ?? null, Target: t.what, Path: p.Path, MaxBytes: maxBytes, Running: true };
  }

  stop(switchName: string, p: CaptureTargetParams): Record<string, unknown> {
    const t = this.target(switchName, p);
    const done = t.sw.stopCapture(t.port);
    if (!done) throw new VmhostError('NOT_FOUND', `No packet capture is running on ${t.what}`, { switch: t.sw.settings.name });
    this.host.event('Information', 'SWITCH_CAPTURE_STOPPED', `Packet capture of ${t.what} stopped: ${done.frames} frames in ${done.path}`);
    return { SwitchName: t.sw.settings.name, VMName: p.VMName ?? null, Target: t.what, Path: done.path, Frames: done.frames, Running: false };
  }
}
