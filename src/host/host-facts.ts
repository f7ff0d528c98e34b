// Facts about this machine that Get-VMHost reports and validation needs.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { availableParallelism, hostname } from 'node:os';
import { promisify } from 'node:util';

export interface HostFacts {
  computerName: string;
  logicalProcessors: number;
  qemuVersion: string;
  vmhostVersion: string;
}

export async function readHostFacts(): Promise<HostFacts> {
  const qemu = await promisify(execFile)('qemu-system-x86_64', ['--version']).then(
    (r) => /version ([\d.]+)/.exec(r.stdout)?.[1] ?? 'unknown',
    () => 'not installed',
  );
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return { computerName: hostname(), logicalProcessors: availableParallelism(), qemuVersion: qemu, vmhostVersion: pkg.version };
}
