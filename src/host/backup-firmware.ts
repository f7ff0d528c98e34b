// A generation 2 VM's UEFI variables (OVMF_VARS.fd, or OVMF_VARS_SB.fd with Secure Boot: the boot
// entries, BootOrder, the Secure Boot keys) belong with its disks: a disk restored without them
// boots through the firmware's fallback path at best, and an admin's enrolled keys are lost. So
// the first drive's stream header of a backup point carries them (a few hundred KiB, base64;
// restic deduplicates the unchanged ones from point to point), read just after the point's
// pause — the firmware writes them only when the guest sets a variable — and a restore puts
// them back into the VM's folder before its first start.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { VmhostError } from '../common/index.ts';
import { writeFileAtomic } from './atomic-file.ts';
import type { VmPaths } from './vm-paths.ts';

/** File name (OVMF_VARS.fd or OVMF_VARS_SB.fd) → its bytes, base64. */
export type FirmwareVarsImage = Record<string, string>;

const MAX_BYTES = 16 << 20;

const files = (p: VmPaths): string[] => [p.firmwareVars, p.firmwareVarsSecure];

/** The VM's variable stores that exist (a generation 1 VM, or one never started, has none). */
export async function readFirmwareVars(p: VmPaths): Promise<FirmwareVarsImage | undefined> {
  const out: FirmwareVarsImage = {};
  for (const f of files(p)) {
    const b = await readFile(f).catch((e: NodeJS.ErrnoException) => { if (e.code === 'ENOENT') return undefined; throw e; });
    if (b) out[basename(f)] = b.toString('base64');
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** A point's variable stores, checked: which of the VM's files each replaces, and its bytes. */
export type FirmwareVarsFiles = Array<{ file: 'firmwareVars' | 'firmwareVarsSecure'; bytes: Buffer }>;

/** Check what a point's header holds (`what` names the point in errors) before anything is written. */
export function decodeFirmwareVars(image: unknown, what: string): FirmwareVarsFiles {
  if (image === undefined) return [];
  const bad = (why: string) => new VmhostError('BACKUP_STREAM_INVALID', `${what}: its firmware variables ${why}`, { op: 'restore-backup' });
  if (typeof image !== 'object' || image === null) throw bad('are not a map of files');
  return Object.entries(image).map(([name, data]) => {
    const file = name === 'OVMF_VARS.fd' ? 'firmwareVars' : name === 'OVMF_VARS_SB.fd' ? 'firmwareVarsSecure' : undefined;
    if (file === undefined) throw bad(`name a file that is no variable store: '${name}'`);
    if (typeof data !== 'string' || data.length > (MAX_BYTES / 3) * 4 + 4 || !/^[A-Za-z0-9+/]*={0,2}$/.test(data)) throw bad(`of ${name} are not base64 of at most ${MAX_BYTES} bytes`);
    return { file, bytes: Buffer.from(data, 'base64') };
  });
}

/** Put checked variable stores into the VM's folder (0600, each replaced atomically). */
export async function writeFirmwareVars(p: VmPaths, vars: FirmwareVarsFiles): Promise<void> {
  for (const { file, bytes } of vars) await writeFileAtomic(p[file], bytes);
}
