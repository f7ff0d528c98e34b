// Facts about this host's QEMU install: the binary, its version, the OVMF firmware files,
// and making a VM's own copy of the UEFI variable store. Depends on: src/common, ./error-codes.

import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { chmod, copyFile, rename } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { VmhostError } from '../common/index.ts';
import { QemuErrorCode } from './error-codes.ts';

const run = promisify(execFile);

const OVMF_DIRS = ['/usr/share/OVMF', '/usr/share/ovmf', '/usr/share/qemu'];

/** Path of qemu-system-x86_64: $VMHOST_QEMU, else the first on PATH, else /usr/bin. Throws QEMU_HOST_MISSING. */
export function findQemuBinary(): string {
  const candidates = [
    process.env.VMHOST_QEMU,
    ...(process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, 'qemu-system-x86_64')),
    '/usr/bin/qemu-system-x86_64',
  ];
  for (const c of candidates) {
    if (!c) continue;
    try { accessSync(c, constants.X_OK); return c; } catch { /* next */ }
  }
  throw new VmhostError(QemuErrorCode.QEMU_HOST_MISSING, 'qemu-system-x86_64 not found (install qemu-system-x86 or set VMHOST_QEMU)', { op: 'find-qemu' });
}

export interface QemuVersion { major: number; minor: number; micro: number; text: string }

const versionCache = new Map<string, Promise<QemuVersion>>();

/** Version of a QEMU binary, from `--version` (cached per binary). */
export function qemuVersion(binary = findQemuBinary()): Promise<QemuVersion> {
  let v = versionCache.get(binary);
  if (!v) {
    v = run(binary, ['--version']).then(({ stdout }) => {
      const m = /version (\d+)\.(\d+)\.(\d+)/.exec(stdout);
      if (!m) throw new VmhostError(QemuErrorCode.QEMU_HOST_MISSING, `cannot parse QEMU version: ${stdout.split('\n')[0]}`, { op: 'qemu-version', path: binary });
      return { major: Number(m[1]), minor: Number(m[2]), micro: Number(m[3]), text: stdout.split('\n')[0]!.trim() };
    });
    versionCache.set(binary, v);
  }
  return v;
}

export interface OvmfFirmware {
  /** Read-only code image. */
  codePath: string;
  /** Template variable store to copy per VM. */
  varsTemplatePath: string;
  secureBoot: boolean;
}

/**
 * The 4 MiB OVMF build: OVMF_CODE_4M.fd + OVMF_VARS_4M.fd, or with secure boot the `.ms.fd`
 * pair (Microsoft keys enrolled; needs SMM, which the command line turns on).
 */
export function findOvmf(secureBoot: boolean, dirs: string[] = OVMF_DIRS): OvmfFirmware {
  const suffix = secureBoot ? '.ms.fd' : '.fd';
  for (const d of dirs) {
    const codePath = join(d, `OVMF_CODE_4M${suffix}`);
    const varsTemplatePath = join(d, `OVMF_VARS_4M${suffix}`);
    if (existsSync(codePath) && existsSync(varsTemplatePath)) return { codePath, varsTemplatePath, secureBoot };
  }
  throw new VmhostError(QemuErrorCode.QEMU_HOST_MISSING, `OVMF firmware OVMF_CODE_4M${suffix} not found in ${dirs.join(', ')} (install ovmf)`,
    { op: 'find-ovmf', secureBoot });
}

/** Give a VM its own variable store (copied from the template) unless it already has one. */
export async function ensureVarsFile(varsPath: string, fw: OvmfFirmware): Promise<void> {
  if (existsSync(varsPath)) return;
  const tmp = `${varsPath}.tmp-${randomBytes(6).toString('hex')}`;
  // COPYFILE_EXCL: never through a planted file; copyFile gives the template's mode (0644)
  // whatever the umask, and the vars are the guest's own (UEFI variables, keys): 0600.
  await copyFile(fw.varsTemplatePath, tmp, constants.COPYFILE_EXCL);
  await chmod(tmp, 0o600);
  await rename(tmp, varsPath);
}
