// Packet capture through the daemon (Start-/Stop-VMSwitchCapture, a vmhost extension: Hyper-V
// 2012 R2 has no capture cmdlet). The switch writes the pcap itself (src/switch capture.ts);
// this file checks the file the caller names, on the daemon's host: an absolute path in an
// existing directory, never a directory, and an existing file only when -Force says overwrite.
import { stat } from 'node:fs/promises';
import { dirname, isAbsolute } from 'node:path';
import { VmhostError } from '../common/index.ts';
import { invalid } from './invalid-argument.ts';

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
