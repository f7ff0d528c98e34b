// Test support: run real vmhostd daemons on temp data dirs and free ports, and the real CLI
// against them. Every daemon and every VM it started is cleaned up by `stop({ killVms })`.
// `{ remote: true }` makes a daemon listen as a remote host does (0.0.0.0, --allow-remote: HTTPS
// only); the test reaches it through 127.0.0.1 and its CLI pins into a config dir of its own.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { exchange } from '../../src/common/pinned-http.ts';

export const ROOT = resolve(import.meta.dirname, '../..');

export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
    s.on('error', fail);
  });
}

/** A UDP port free right now on 127.0.0.1 (for --net-adapter tunnels): the switch tests' own. */
export { freeUdpPort } from '../../src/switch/test-support.ts';

export interface CliResult { code: number; stdout: string; stderr: string }

export interface TestDaemonOptions {
  /** Listen on 0.0.0.0 with --allow-remote, so the daemon serves HTTPS only. */
  remote?: boolean;
  /** How long the daemon is given to start listening (default 60 s). */
  startTimeoutMs?: number;
}

export class TestDaemon {
  proc?: ChildProcess;
  token = '';
  output = '';
  /** The TLS certificate fingerprint the daemon recorded in daemon.json (remote daemons). */
  tlsFingerprint: string | undefined;
  /** VMHOST_CONFIG_DIR of this daemon's CLI (known_hosts, credentials), when remote. */
  cliConfigDir: string | undefined;

  /** Extra vmhostd arguments for every launch (e.g. --net-adapter); a test may change them before a relaunch. */
  private constructor(readonly dataDir: string, readonly port: number, public args: string[], readonly remote: boolean, private readonly startTimeoutMs = 60_000) {}

  get url(): string {
    return `${this.remote ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  static async start(dataDir?: string, args: string[] = [], opts: TestDaemonOptions = {}): Promise<TestDaemon> {
    const dir = dataDir ?? (await mkdtemp(join(tmpdir(), 'vmhost-t-')));
    const d = new TestDaemon(dir, await freePort(), args, opts.remote ?? false, opts.startTimeoutMs);
    if (d.remote) d.cliConfigDir = await mkdtemp(join(tmpdir(), 'vmhost-cli-'));
    await d.launch();
    return d;
  }

  async launch(): Promise<void> {
    this.output = '';
    const listen = this.remote ? [`0.0.0.0:${this.port}`, '--allow-remote'] : [`127.0.0.1:${this.port}`];
    const proc = spawn(join(ROOT, 'bin/vmhostd'), ['--data-dir', this.dataDir, '--listen', ...listen, ...this.args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    proc.stdout!.on('data', (b: Buffer) => { this.output += b.toString(); });
    proc.stderr!.on('data', (b: Buffer) => { this.output += b.toString(); });
    const deadline = Date.now() + this.startTimeoutMs;
    while (!this.output.includes('listening on')) {
      if (proc.exitCode !== null) throw new Error(`vmhostd exited ${proc.exitCode}: ${this.output}`);
      if (Date.now() > deadline) {
        await this.kill(); // not left running: nobody holds it to stop it
        throw new Error(`vmhostd did not start within ${this.startTimeoutMs / 1000} s: ${this.output}`);
      }
      await sleep(100);
    }
    this.token = (await readFile(join(this.dataDir, 'token'), 'utf8')).trim();
    this.tlsFingerprint = (JSON.parse(await readFile(join(this.dataDir, 'daemon.json'), 'utf8')) as { tlsFingerprint?: string }).tlsFingerprint;
  }

  /** SIGKILL the daemon (VMs keep running). */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  }

  /** SIGTERM: the daemon's graceful stop (it saves state; VMs keep running). */
  async terminate(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
  }

  async api(method: string, path: string, body?: unknown, token: string | null = this.token): Promise<{ status: number; json: unknown; text: string }> {
    const headers: Record<string, string> = {};
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    // The CLI's transport: a remote daemon must show the certificate it recorded.
    const res = await exchange(new URL(this.url + path), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }, (fp) => {
      if (fp !== this.tlsFingerprint) throw new Error(`daemon presented certificate ${fp}, recorded ${this.tlsFingerprint}`);
    });
    let json: unknown;
    try { json = JSON.parse(res.text); } catch { json = undefined; }
    return { status: res.status, json, text: res.text };
  }

  /** Run `bin/vmhost <args>` against this daemon. */
  cli(...args: string[]): Promise<CliResult> {
    return runCli(args, { VMHOST_URL: this.url, VMHOST_TOKEN: this.token, ...(this.cliConfigDir ? { VMHOST_CONFIG_DIR: this.cliConfigDir } : {}) });
  }

  /** Run a cmdlet that must succeed: its stdout (a failure names the command and its stderr). */
  async ok(...args: string[]): Promise<string> {
    const r = await this.cli(...args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  /** Kill the daemon and every QEMU of its VMs, remove the data dir. */
  async stop(): Promise<void> {
    await this.kill();
    for (const pid of await this.qemuPids()) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    }
    await rm(this.dataDir, { recursive: true, force: true });
    if (this.cliConfigDir) await rm(this.cliConfigDir, { recursive: true, force: true });
  }

  async qemuPids(): Promise<number[]> {
    const pids: number[] = [];
    const vms = await readdir(join(this.dataDir, 'vms')).catch(() => []);
    for (const id of vms) {
      const rec = await readFile(join(this.dataDir, 'vms', id, 'runtime.json'), 'utf8').catch(() => undefined);
      if (rec) pids.push((JSON.parse(rec) as { pid: number }).pid);
    }
    return pids;
  }
}

export function runCli(args: string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((ok) => {
    const p = spawn(join(ROOT, 'bin/vmhost'), args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
    p.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    p.on('close', (code) => ok({ code: code ?? -1, stdout, stderr }));
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll `fn` until it returns a truthy value or `ms` passes. */
export async function waitFor<T>(what: string, ms: number, fn: () => Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { last = e; }
    await sleep(250);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
