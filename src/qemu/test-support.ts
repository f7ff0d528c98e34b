// Helpers for this module's tests that run a real QEMU: a temp dir with the per-VM paths, a
// minimal spec, and a registry that kills every QEMU a test started, pass or fail.
// Not exported from index.ts. Depends on: ./vm-spec, ./qemu-process, ./command-line.

import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runtimePathsIn } from './command-line.ts';
import { QemuProcess, isPidAlive } from './qemu-process.ts';
import type { QemuLaunchOptions, QemuVmSpec } from './vm-spec.ts';

/** A scratch area for QEMU tests; `cleanup()` kills its QEMUs and removes the dir. */
export class QemuTestBed {
  readonly dir = mkdtempSync(join(tmpdir(), 'vmhost-qemu-'));
  private readonly procs = new Set<QemuProcess>();
  private readonly pids = new Set<number>();

  spec(overrides: Partial<QemuVmSpec> = {}, sub = 'vm'): QemuVmSpec {
    const d = join(this.dir, sub);
    return {
      generation: 1, name: `test-${sub}`, uuid: randomUUID(), processorCount: 1, memoryStartupBytes: 64 * 1024 * 1024,
      accelerator: 'tcg', disks: [], nics: [], paths: runtimePathsIn(d), ...overrides,
    };
  }

  async start(spec: QemuVmSpec, launch: QemuLaunchOptions = {}): Promise<QemuProcess> {
    mkdirSync(join(spec.paths.qmpSocket, '..'), { recursive: true });
    const proc = await QemuProcess.startVm(spec, { launch, logFile: join(spec.paths.qmpSocket, '..', 'qemu.log') });
    this.track(proc);
    return proc;
  }

  track(proc: QemuProcess): void { this.procs.add(proc); this.pids.add(proc.pid); }

  async cleanup(): Promise<void> {
    for (const pid of this.pids) { try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ } }
    await Promise.all([...this.procs].map((p) => p.detach()));
    for (let i = 0; i < 60 && [...this.pids].some(isPidAlive); i++) await sleep(50);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Wait until `file` contains `text` (polling), or throw after `timeoutMs`. */
export async function waitForText(file: string, text: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const t = await readFile(file, 'utf8').catch(() => '');
    if (t.includes(text)) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`'${text}' not in ${file} after ${timeoutMs} ms; tail: ${t.slice(-300)}`);
    await sleep(100);
  }
}
