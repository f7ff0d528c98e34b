// One running QEMU: started detached from the daemon (own session/process group, stdio to a
// log file) so the VM outlives a daemon crash, or re-attached after a daemon restart by pid.
// Exit is detected for processes we did not spawn too: Node has no pidfd, so we watch the QMP
// socket closing and poll kill(pid, 0) + /proc/<pid>/stat (a zombie counts as gone).
// Depends on: src/common, ./qmp-client, ./host-facts, ./command-line, ./error-codes.

import { EventEmitter } from 'node:events';
import { spawn, type StdioOptions } from 'node:child_process';
import { closeSync, constants, createReadStream, openSync, readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGunzip } from 'node:zlib';
import { VmhostError } from '../common/index.ts';
import { QemuErrorCode } from './error-codes.ts';
import { buildQemuArgv, handedFiles } from './command-line.ts';
import type { HandedFile } from './handed-files.ts';
import { INCOMING_FD, incomingFileOf } from './incoming-file.ts';
import { findQemuBinary } from './host-facts.ts';
import { QmpClient } from './qmp-client.ts';
import type { QemuLaunchOptions, QemuVmSpec } from './vm-spec.ts';

export interface QemuStartOptions {
  /** Arguments after the binary, e.g. from buildQemuArgv(). Must contain `-uuid <uuid>`. */
  argv: string[];
  qmpSocket: string;
  uuid: string;
  /** QEMU's stdout+stderr are appended here. */
  logFile: string;
  binary?: string;
  /** How long QEMU gets to open its QMP socket. Default 20000 ms. */
  startTimeoutMs?: number;
  /** Default per-command QMP timeout. */
  commandTimeoutMs?: number;
  /**
   * The `-pidfile` of this VM. If it names a live QEMU of the same uuid, start() refuses
   * (QEMU_START_FAILED) instead of replacing that instance's QMP socket.
   */
  pidFile?: string;
  /** Files QEMU gets as open descriptors at these numbers (handed-files.ts). */
  handedFiles?: HandedFile[];
}

export interface QemuAttachOptions {
  pid: number;
  qmpSocket: string;
  uuid: string;
  commandTimeoutMs?: number;
}

/** How the process ended. code/signal are null when it was not our child (unknowable). */
export interface QemuExit { code: number | null; signal: NodeJS.Signals | null }

/** Is `pid` alive and not a zombie? */
export function isPidAlive(pid: number): boolean {
  try { process.kill(pid, 0); } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch { return false; }
}

/** Is `pid` a QEMU started for this VM uuid (checked through /proc/<pid>/cmdline)? */
export function isQemuOfVm(pid: number, uuid: string): boolean {
  let argv: string[];
  try { argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'); } catch { return false; }
  if (!basename(argv[0] ?? '').startsWith('qemu-system')) return false;
  const i = argv.indexOf('-uuid');
  return i >= 0 && argv[i + 1]?.toLowerCase() === uuid.toLowerCase();
}

async function tail(file: string, bytes = 2000): Promise<string> {
  try { const t = await readFile(file, 'utf8'); return t.slice(-bytes).trim(); } catch { return ''; }
}

const POLL_MS = 250;

export interface QemuProcessEvents { exit: [QemuExit] }

export class QemuProcess extends EventEmitter<QemuProcessEvents> {
  readonly pid: number;
  readonly uuid: string;
  readonly qmp: QmpClient;
  /** Resolves once the process is gone. */
  readonly exited: Promise<QemuExit>;
  private exitInfo: QemuExit | undefined;
  private resolveExit!: (e: QemuExit) => void;
  private poller: NodeJS.Timeout | undefined;
  private childExit: QemuExit | undefined;
  private detached = false;
  /** Spawned by this process: Node reaps it and reports code/signal, so wait for that. */
  private isChild = false;

  private constructor(pid: number, uuid: string, qmp: QmpClient) {
    super();
    this.pid = pid;
    this.uuid = uuid;
    this.qmp = qmp;
    this.exited = new Promise((r) => { this.resolveExit = r; });
    this.qmp.on('close', () => this.check());
    this.poller = setInterval(() => this.check(), POLL_MS);
  }

  /** Spawn QEMU detached and connect to its QMP socket. Throws QEMU_START_FAILED with QEMU's own message. */
  static async start(opts: QemuStartOptions): Promise<QemuProcess> {
    const binary = opts.binary ?? findQemuBinary();
    const ctx = { op: 'qemu-start', vm: opts.uuid, path: opts.logFile };
    if (opts.pidFile) {
      const old = Number((await readFile(opts.pidFile, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(old) && old > 0 && isPidAlive(old) && isQemuOfVm(old, opts.uuid)) {
        throw new VmhostError(QemuErrorCode.QEMU_START_FAILED, `VM ${opts.uuid} is already running (QEMU pid ${old})`, { ...ctx, pid: old });
      }
    }
    await rm(opts.qmpSocket, { force: true });
    // A restore from a file: QEMU reads it from fd 3 (no exec: under the sandbox; incoming-file.ts).
    const incoming = incomingFileOf(opts.argv);
    const logFd = openSync(opts.logFile, 'a', 0o600);
    let stateFd: number | undefined;
    const handed: number[] = [];
    let child;
    try {
      if (incoming && !incoming.gzip) stateFd = openSync(incoming.path, constants.O_RDONLY | constants.O_NOFOLLOW);
      const stdio: StdioOptions = ['ignore', logFd, logFd, incoming ? (stateFd ?? 'pipe') : 'ignore'];
      for (const f of opts.handedFiles ?? []) {
        const fd = openSync(f.path, (f.readOnly ? constants.O_RDONLY : constants.O_RDWR) | constants.O_NOFOLLOW);
        handed.push(fd);
        while (stdio.length < f.fd) stdio.push('ignore');
        stdio[f.fd] = fd;
      }
      child = spawn(binary, incoming?.argv ?? opts.argv, { detached: true, stdio });
    } finally {
      closeSync(logFd);
      if (stateFd !== undefined) closeSync(stateFd);
      for (const fd of handed) closeSync(fd);
    }
    if (incoming?.gzip) {
      const sink = child.stdio[INCOMING_FD] as Writable | null;
      // QEMU exiting early (a bad stream) closes the pipe: that error is QEMU's to report.
      if (sink) void pipeline(createReadStream(incoming.path), createGunzip(), sink).catch(() => undefined);
    }
    let early: QemuExit | undefined;
    let spawnError: Error | undefined;
    child.on('error', (e) => { spawnError = e; });
    child.on('exit', (code, signal) => { early = { code, signal }; });
    child.unref();
    const deadline = Date.now() + (opts.startTimeoutMs ?? 20000);
    // Wait for a spawn error, an early exit or the QMP socket.
    for (;;) {
      await sleep(30);
      if (spawnError) {
        throw new VmhostError(QemuErrorCode.QEMU_START_FAILED, `cannot run ${binary}: ${spawnError.message}`, ctx, { cause: spawnError });
      }
      if (early) {
        throw new VmhostError(QemuErrorCode.QEMU_START_FAILED,
          `QEMU exited during start (code ${early.code ?? early.signal}): ${await tail(opts.logFile, 600)}`, ctx);
      }
      try {
        const qmp = await QmpClient.connect(opts.qmpSocket, { timeoutMs: 3000, commandTimeoutMs: opts.commandTimeoutMs });
        const proc = new QemuProcess(child.pid!, opts.uuid, qmp);
        proc.isChild = true;
        if (early) proc.childExit = early;
        child.on('exit', (code, signal) => { proc.childExit = { code, signal }; proc.check(); });
        return proc;
      } catch (e) {
        if (Date.now() > deadline) {
          try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
          throw new VmhostError(QemuErrorCode.QEMU_START_FAILED, `QEMU did not open its QMP socket within ${opts.startTimeoutMs ?? 20000} ms`, ctx, { cause: e });
        }
      }
    }
  }

  /**
   * Build the command line for `spec` and start it: the usual way to power on a VM.
   * QEMU's own output goes to `logFile`; the pidfile guards against a second instance.
   */
  static startVm(spec: QemuVmSpec, opts: { logFile: string; launch?: QemuLaunchOptions; binary?: string; startTimeoutMs?: number; commandTimeoutMs?: number }): Promise<QemuProcess> {
    return QemuProcess.start({
      argv: buildQemuArgv(spec, opts.launch), handedFiles: handedFiles(spec, opts.launch), qmpSocket: spec.paths.qmpSocket, uuid: spec.uuid, pidFile: spec.paths.pidFile,
      logFile: opts.logFile, binary: opts.binary, startTimeoutMs: opts.startTimeoutMs, commandTimeoutMs: opts.commandTimeoutMs,
    });
  }

  /**
   * Re-attach to a QEMU started earlier (by a previous daemon): checks that the pid is alive and
   * is QEMU with this VM's uuid, then connects QMP and confirms the uuid there too.
   */
  static async attach(opts: QemuAttachOptions): Promise<QemuProcess> {
    const ctx = { op: 'qemu-attach', vm: opts.uuid, pid: opts.pid };
    if (!isPidAlive(opts.pid)) throw new VmhostError(QemuErrorCode.QEMU_ATTACH_FAILED, `process ${opts.pid} is not running`, ctx);
    if (!isQemuOfVm(opts.pid, opts.uuid)) {
      throw new VmhostError(QemuErrorCode.QEMU_ATTACH_FAILED, `process ${opts.pid} is not the QEMU of VM ${opts.uuid}`, ctx);
    }
    const qmp = await QmpClient.connect(opts.qmpSocket, { timeoutMs: 5000, commandTimeoutMs: opts.commandTimeoutMs });
    try {
      const { UUID } = await qmp.execute('query-uuid');
      if (UUID.toLowerCase() !== opts.uuid.toLowerCase()) {
        throw new VmhostError(QemuErrorCode.QEMU_ATTACH_FAILED, `QMP socket ${opts.qmpSocket} belongs to VM ${UUID}, not ${opts.uuid}`, ctx);
      }
    } catch (e) {
      await qmp.close();
      throw e;
    }
    return new QemuProcess(opts.pid, opts.uuid, qmp);
  }

  get hasExited(): boolean { return this.exitInfo !== undefined; }

  isAlive(): boolean { return !this.hasExited && isPidAlive(this.pid); }

  private check(): void {
    if (this.exitInfo || this.detached) return;
    if (this.isChild ? !this.childExit : isPidAlive(this.pid)) return;
    this.exitInfo = this.childExit ?? { code: null, signal: null };
    clearInterval(this.poller);
    this.poller = undefined;
    void this.qmp.close();
    this.resolveExit(this.exitInfo);
    this.emit('exit', this.exitInfo);
  }

  /** Send a signal to QEMU's process group (QEMU and any `exec:` migration helper). */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.hasExited) return;
    try { process.kill(-this.pid, signal); } catch {
      try { process.kill(this.pid, signal); } catch { /* already gone */ }
    }
  }

  /** Ask QEMU to exit (QMP quit); SIGKILL if it is still there after `timeoutMs` (default 5000). */
  async quit(timeoutMs = 5000): Promise<QemuExit> {
    if (!this.hasExited) {
      this.qmp.execute('quit', undefined, { timeoutMs }).catch(() => { /* the socket may close before the answer */ });
      const ac = new AbortController();
      const t = sleep(timeoutMs, 'timeout' as const, { signal: ac.signal }).catch(() => 'aborted' as const);
      const r = await Promise.race([this.exited, t]);
      ac.abort();
      if (r === 'timeout') this.kill('SIGKILL');
    }
    return this.exited;
  }

  /** Forget the process without touching it (it keeps running): closes QMP, stops watching. */
  async detach(): Promise<void> {
    clearInterval(this.poller);
    this.poller = undefined;
    this.detached = true;
    await this.qmp.close();
  }
}
