// Decides KVM or TCG. KVM only if /dev/kvm can be opened AND a probe guest really runs under
// it: a tiny BIOS (probe-rom.ts) that uses the FPU and SSE and prints a marker. Anything else —
// no marker within the time limit, QEMU's 'internal-error' run state, QEMU exiting, QMP saying
// KVM is not enabled — means TCG. The probe QEMU is always killed; the whole probe is bounded
// by `timeoutMs`. The answer is cached per process. `VMHOST_ACCEL=kvm|tcg` overrides it.
// Depends on: ./qemu-process, ./probe-rom, ./host-facts.

import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { findQemuBinary } from './host-facts.ts';
import { PROBE_MARKER, probeRom } from './probe-rom.ts';
import { QemuProcess } from './qemu-process.ts';
import type { Accelerator } from './vm-spec.ts';

export interface AcceleratorProbeResult {
  accelerator: Accelerator;
  /** Why: one line for logs and `Get-VMHost`. */
  reason: string;
  elapsedMs: number;
}

export interface AcceleratorProbeOptions {
  binary?: string;
  /** Hard limit for the whole probe. Default 6000 ms. */
  timeoutMs?: number;
  kvmDevice?: string;
  /** -cpu for the probe guest. Default 'host', the model VMs get under KVM (command-line.ts). */
  cpuModel?: string;
}

let cached: Promise<AcceleratorProbeResult> | undefined;

/** 'kvm' or 'tcg' for this host, probed once per process. */
export async function probeAccelerator(opts: AcceleratorProbeOptions = {}): Promise<Accelerator> {
  return (await probeAcceleratorDetailed(opts)).accelerator;
}

/** Same as probeAccelerator(), with the reason and timing (cached too). */
export function probeAcceleratorDetailed(opts: AcceleratorProbeOptions = {}): Promise<AcceleratorProbeResult> {
  cached ??= runAcceleratorProbe(opts);
  return cached;
}

/** Run the probe now, bypassing the cache and VMHOST_ACCEL (tests, diagnostics). */
export async function runAcceleratorProbe(opts: AcceleratorProbeOptions = {}, useEnvOverride = true): Promise<AcceleratorProbeResult> {
  const started = Date.now();
  const done = (accelerator: Accelerator, reason: string): AcceleratorProbeResult => ({ accelerator, reason, elapsedMs: Date.now() - started });
  const forced = process.env.VMHOST_ACCEL;
  if (useEnvOverride && (forced === 'kvm' || forced === 'tcg')) return done(forced, `forced by VMHOST_ACCEL=${forced}`);

  const kvmDevice = opts.kvmDevice ?? '/dev/kvm';
  try { await access(kvmDevice, constants.R_OK | constants.W_OK); } catch {
    return done('tcg', `${kvmDevice} is missing or not accessible`);
  }
  const timeoutMs = opts.timeoutMs ?? 6000;
  const deadline = started + timeoutMs;
  const dir = await mkdtemp(join(tmpdir(), 'vmhost-kvm-probe-'));
  const uuid = randomUUID();
  const rom = join(dir, 'probe.rom'), marker = join(dir, 'marker'), qmpSocket = join(dir, 'qmp.sock');
  let proc: QemuProcess | undefined;
  try {
    await writeFile(rom, probeRom());
    const argv = [
      '-uuid', uuid, '-name', 'vmhost-kvm-probe', '-nodefaults', '-no-user-config', '-display', 'none',
      '-accel', 'kvm', '-machine', 'pc', '-cpu', opts.cpuModel ?? 'host', '-m', '16', '-bios', rom,
      '-chardev', `file,id=dbg,path=${marker}`, '-device', 'isa-debugcon,iobase=0xe9,chardev=dbg',
      '-chardev', `socket,id=qmp,path=${qmpSocket},server=on,wait=off`, '-mon', 'chardev=qmp,mode=control',
    ];
    try {
      proc = await QemuProcess.start({
        argv, qmpSocket, uuid, logFile: join(dir, 'qemu.log'), binary: opts.binary ?? findQemuBinary(),
        startTimeoutMs: Math.max(500, deadline - Date.now()), commandTimeoutMs: 1000,
      });
    } catch (e) {
      return done('tcg', `KVM probe guest did not start: ${(e as Error).message.split('\n')[0]}`);
    }
    while (Date.now() < deadline) {
      const out = await readFile(marker, 'utf8').catch(() => '');
      if (out.includes(PROBE_MARKER)) {
        const kvm = await proc.qmp.execute('query-kvm').catch(() => undefined);
        return kvm?.enabled ? done('kvm', 'probe guest ran FPU/SSE code under KVM') : done('tcg', 'QEMU reports KVM not enabled');
      }
      if (out.includes('F')) return done('tcg', 'probe guest computed a wrong FPU result under KVM');
      if (proc.hasExited) return done('tcg', 'KVM probe guest exited');
      const st = await proc.qmp.execute('query-status').catch(() => undefined);
      if (st?.status === 'internal-error') return done('tcg', 'KVM internal error running the probe guest (half-working /dev/kvm)');
      await sleep(50);
    }
    return done('tcg', `KVM probe guest gave no sign of life within ${timeoutMs} ms`);
  } finally {
    if (proc) { proc.kill('SIGKILL'); await Promise.race([proc.exited, sleep(2000, undefined, { ref: false })]); await proc.detach(); }
    await rm(dir, { recursive: true, force: true });
  }
}
