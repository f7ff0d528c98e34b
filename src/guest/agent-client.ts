// Host side of the guest integration services: talks to the vmhost agent over the
// unix socket QEMU serves for the virtio-serial port org.vmhost.agent.0.
//
// QEMU is the socket server (`server=on,wait=off`), so a daemon restart simply means a
// new AgentClient connecting to the same path. The client reconnects by itself when
// the connection drops (unless `reconnect: false`); requests in flight at that moment
// fail with AGENT_DISCONNECTED, requests made while disconnected fail at once.
//
// Readiness: the agent sends {"event":"ready"} when it starts and when it notices a
// host (re)connect; a fast reconnect may go unnoticed by the guest, so on every connect
// the client also sends a probe ping. Whichever answers first makes the client 'ready'.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { open } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { VmhostError, type ErrorCode } from '../common/index.ts';
import {
  LineSplitter, decodeLine, encodeRequest,
  type AgentInfo, type AgentRequest, type ExecData, type FreezeData, type GuestKvp, type MemInfoData, type PingData, type SetTimeData, type ThawData, type WriteFileData,
} from './protocol.ts';

export const AGENT_PORT_NAME = 'org.vmhost.agent.0';

export interface AgentClientOptions {
  /** Unix socket QEMU listens on for the agent chardev. */
  path: string;
  /** Default timeout of a request (exec adds its own timeout to this). Default 10 s. */
  requestTimeoutMs?: number;
  /** Reconnect after the connection drops or cannot be made. Default true. */
  reconnect?: boolean;
  /** Delay between connection attempts. Default 250 ms. */
  reconnectDelayMs?: number;
  /** Longest line accepted from the agent. Default 8 MiB (exec output is ≤ 2×1 MiB base64). */
  maxLineBytes?: number;
  /** Context for errors (e.g. the VM name). */
  vm?: string;
}

export interface ExecOptions {
  /** Run time limit inside the guest; the script's process group is killed after it. Default 30 s. */
  timeoutMs?: number;
}

export interface ExecResult {
  stdout: Buffer;
  stderr: Buffer;
  /** null when the script was killed by a signal or timed out. */
  exitCode: number | null;
  signal: number | null;
  timedOut: boolean;
  /** Output beyond 1 MiB per stream was dropped. */
  truncated: boolean;
}

export interface WriteFileOptions {
  /** Create missing parent directories in the guest (Copy-VMFile -CreateFullPath). */
  createFullPath?: boolean;
  /** Replace an existing guest file (Copy-VMFile -Force). */
  overwrite?: boolean;
  /** File bytes per request. Default 1 MiB: 1.33 MiB of base64, well under the agent's 4 MiB line. */
  chunkBytes?: number;
  /** Requests in flight at once. The agent handles them in order, so this only hides the round trip. Default 4. */
  window?: number;
  /** Time limit per chunk. Default: the client's request timeout. */
  chunkTimeoutMs?: number;
  /** Called as the guest acknowledges chunks: bytes in the guest so far, of `total`. */
  onProgress?: (bytes: number, total: number) => void;
}

export interface AgentClientEvents {
  connected: [];
  disconnected: [];
  ready: [AgentInfo];
  /** Any other unsolicited agent event. */
  event: [string, Record<string, unknown>];
}

interface Pending {
  resolve: (data: unknown) => void;
  reject: (err: VmhostError) => void;
  timer: NodeJS.Timeout | undefined;
  op: string;
}

const EXEC_REPLY_MARGIN_MS = 5_000;
const WRITE_CHUNK_BYTES = 1024 * 1024;
const WRITE_WINDOW = 4;
/** The agent accepts lines up to 4 MiB; leave room for the rest of the request. */
const MAX_SCRIPT_BASE64 = 4 * 1024 * 1024 - 1024;

export class AgentClient extends EventEmitter<AgentClientEvents> {
  private readonly opts: Required<Omit<AgentClientOptions, 'vm'>> & { vm: string | undefined };
  private socket: Socket | undefined;
  private isConnected = false;
  private isReady = false;
  private closed = false;
  // Random start: a reply the guest wrote while no host was connected is delivered to
  // the next connection, possibly another client's; it must not match a new request.
  private nextId = 1 + Math.floor(Math.random() * 2 ** 40);
  private readonly pending = new Map<number, Pending>();
  private readonly splitter: LineSplitter;
  private retryTimer: NodeJS.Timeout | undefined;
  private info: AgentInfo | undefined;

  constructor(options: AgentClientOptions) {
    super();
    this.opts = {
      path: options.path,
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      reconnect: options.reconnect ?? true,
      reconnectDelayMs: options.reconnectDelayMs ?? 250,
      maxLineBytes: options.maxLineBytes ?? 8 * 1024 * 1024,
      vm: options.vm,
    };
    this.splitter = new LineSplitter(this.opts.maxLineBytes);
  }

  get connected(): boolean { return this.isConnected; }
  /** The agent answered on the current connection. */
  get ready(): boolean { return this.isReady; }
  /** What the agent last said about itself. */
  get agentInfo(): AgentInfo | undefined { return this.info; }

  /**
   * Starts connecting. Resolves once connected; with `reconnect` (default) it keeps
   * trying until connected or closed, else it rejects with AGENT_CONNECT_FAILED.
   */
  connect(): Promise<void> {
    if (this.closed) return Promise.reject(this.err('AGENT_CLOSED', 'client is closed', 'connect'));
    if (this.isConnected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onConnected = () => { this.off('connected', onConnected); resolve(); };
      this.on('connected', onConnected);
      if (!this.socket && !this.retryTimer) this.attempt((e) => { this.off('connected', onConnected); reject(e); });
    });
  }

  /** Resolves when the agent is ready on the current (or next) connection. */
  waitReady(timeoutMs: number): Promise<AgentInfo> {
    if (this.isReady && this.info) return Promise.resolve(this.info);
    return new Promise((resolve, reject) => {
      const onReady = (info: AgentInfo) => { clearTimeout(timer); resolve(info); };
      const timer = setTimeout(() => {
        this.off('ready', onReady);
        reject(this.err('AGENT_TIMEOUT', `agent not ready within ${timeoutMs} ms`, 'waitReady'));
      }, timeoutMs);
      this.once('ready', onReady);
    });
  }

  /** Heartbeat. */
  async ping(timeoutMs?: number): Promise<PingData> {
    return (await this.request({ id: 0, op: 'ping' }, timeoutMs)) as PingData;
  }

  /** Key/value exchange: the guest's intrinsic items (FQDN, OS, addresses). */
  async kvp(timeoutMs?: number): Promise<GuestKvp> {
    return (await this.request({ id: 0, op: 'kvp' }, timeoutMs)) as GuestKvp;
  }

  /** The guest's memory and pressure (dynamic memory); an agent older than the op fails with AGENT_ERROR UNKNOWN_OP. */
  async meminfo(timeoutMs?: number): Promise<MemInfoData> {
    return (await this.request({ id: 0, op: 'meminfo' }, timeoutMs)) as MemInfoData;
  }

  /** Runs `script` with /bin/sh in the guest; output is captured binary-safe. */
  async exec(script: string | Buffer, options: ExecOptions = {}): Promise<ExecResult> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const encoded = Buffer.from(script).toString('base64');
    if (encoded.length > MAX_SCRIPT_BASE64) {
      throw this.err('AGENT_REQUEST_TOO_LARGE', `script of ${Buffer.byteLength(script)} bytes exceeds the agent's line limit`, 'exec');
    }
    const req: AgentRequest = { id: 0, op: 'exec', script: encoded, timeoutMs };
    const d = (await this.request(req, timeoutMs + EXEC_REPLY_MARGIN_MS)) as ExecData;
    return {
      stdout: Buffer.from(d.stdout, 'base64'),
      stderr: Buffer.from(d.stderr, 'base64'),
      exitCode: d.exitCode,
      signal: d.signal,
      timedOut: d.timedOut,
      truncated: d.truncated,
    };
  }

  /** Time Synchronization: sets the guest's wall clock; returns its value just before and after. */
  async setTime(timeMs: number, timeoutMs?: number): Promise<SetTimeData> {
    return (await this.request({ id: 0, op: 'settime', timeMs: Math.round(timeMs) }, timeoutMs)) as SetTimeData;
  }

  /**
   * Freezes the guest's writable file systems (FIFREEZE): their data and journals are on the
   * disks and new writes wait. The agent thaws them by itself `autoThawMs` after, or when this
   * connection drops. An agent older than the op fails with AGENT_ERROR UNKNOWN_OP.
   */
  async freeze(autoThawMs: number, timeoutMs?: number): Promise<FreezeData> {
    return (await this.request({ id: 0, op: 'freeze', timeoutMs: autoThawMs }, timeoutMs)) as FreezeData;
  }

  /** Thaws what `freeze` froze; `thawed` 0 after a freeze means the agent's own timeout came first. */
  async thaw(timeoutMs?: number): Promise<ThawData> {
    return (await this.request({ id: 0, op: 'thaw' }, timeoutMs)) as ThawData;
  }

  /**
   * Copies a host file to `guestPath` in chunks (Copy-VMFile). The guest writes a temp file
   * beside the target and renames it on the last chunk; on any failure the temp file is
   * removed (best effort), so the target name holds either the old file or the whole new one.
   * Guest refusals arrive as AGENT_ERROR with context.agentCode FILE_EXISTS / NO_DIRECTORY / IO_ERROR.
   */
  async writeFile(sourcePath: string, guestPath: string, o: WriteFileOptions = {}): Promise<{ bytes: number }> {
    const chunkBytes = o.chunkBytes ?? WRITE_CHUNK_BYTES;
    const window = o.window ?? WRITE_WINDOW;
    const transfer = randomBytes(8).toString('hex');
    const fh = await open(sourcePath, 'r');
    const inflight = new Set<Promise<void>>();
    let failure: unknown;
    let acked = 0;
    try {
      const total = (await fh.stat()).size;
      let offset = 0;
      // A zero-length file is one final chunk with no data.
      do {
        const len = Math.min(chunkBytes, total - offset);
        const buf = Buffer.alloc(len);
        const { bytesRead } = len > 0 ? await fh.read(buf, 0, len, offset) : { bytesRead: 0 };
        if (bytesRead !== len) throw this.err('AGENT_SOURCE_CHANGED', `${sourcePath} shrank while it was being copied`, 'writefile');
        const req: AgentRequest = {
          id: 0, op: 'writefile', path: guestPath, transfer, offset, data: buf.toString('base64'),
          createFullPath: o.createFullPath ?? false, overwrite: o.overwrite ?? false, final: offset + len >= total,
        };
        const p: Promise<void> = this.request(req, o.chunkTimeoutMs).then((d) => {
          acked = Math.max(acked, (d as WriteFileData).size);
          o.onProgress?.(acked, total);
        }, (e: unknown) => { failure ??= e; });
        inflight.add(p);
        void p.then(() => inflight.delete(p));
        offset += len;
        while (inflight.size >= window && failure === undefined) await Promise.race(inflight);
      } while (offset < total && failure === undefined);
      await Promise.all(inflight);
      if (failure !== undefined) throw failure;
      return { bytes: total };
    } catch (e) {
      await Promise.all(inflight);
      if (this.isConnected) {
        await this.request({ id: 0, op: 'writefile', path: guestPath, transfer, abort: true }, 5_000).catch(() => undefined);
      }
      throw failure ?? e;
    } finally {
      await fh.close();
    }
  }

  /**
   * Graceful shutdown (or reboot): the agent acknowledges, syncs and powers off.
   * A connection lost right after the request counts as success: the machine went away.
   */
  async shutdown(options: { reboot?: boolean; timeoutMs?: number } = {}): Promise<void> {
    const req: AgentRequest = options.reboot ? { id: 0, op: 'shutdown', reboot: true } : { id: 0, op: 'shutdown' };
    try {
      await this.request(req, options.timeoutMs);
    } catch (e) {
      if (e instanceof VmhostError && e.code === 'AGENT_DISCONNECTED' && e.context.sent === true) return;
      throw e;
    }
  }

  /** Closes the connection for good; pending requests fail with AGENT_CLOSED. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.failPending('AGENT_CLOSED', 'client closed');
    const s = this.socket;
    if (s && !s.destroyed) {
      await new Promise<void>((resolve) => { s.once('close', () => resolve()); s.destroy(); });
    }
  }

  // ---- internals ----

  private request(req: AgentRequest, timeoutMs = this.opts.requestTimeoutMs): Promise<unknown> {
    const op = req.op;
    if (this.closed) return Promise.reject(this.err('AGENT_CLOSED', 'client is closed', op));
    const socket = this.socket;
    if (!socket || !this.isConnected) return Promise.reject(this.err('AGENT_DISCONNECTED', 'not connected to the agent', op));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const p: Pending = { resolve, reject, op, timer: undefined };
      p.timer = setTimeout(() => {
        this.pending.delete(id);
        reject(this.err('AGENT_TIMEOUT', `agent did not answer ${op} within ${timeoutMs} ms`, op, { timeoutMs }));
      }, timeoutMs);
      p.timer.unref(); // the open socket keeps the process alive while a request is pending
      this.pending.set(id, p);
      socket.write(encodeRequest({ ...req, id }));
    });
  }

  private attempt(onFirstFailure?: (e: VmhostError) => void): void {
    this.retryTimer = undefined;
    if (this.closed) return;
    const socket = netConnect(this.opts.path);
    this.socket = socket;
    let wasConnected = false;
    socket.on('connect', () => {
      wasConnected = true;
      this.isConnected = true;
      this.isReady = false;
      this.splitter.reset();
      // A lone newline ends any half line a previous host left in the agent's buffer.
      socket.write('\n');
      this.emit('connected');
      this.probe();
    });
    socket.on('data', (chunk: Buffer) => {
      for (const line of this.splitter.push(chunk)) this.onLine(line);
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (!wasConnected && onFirstFailure && !this.opts.reconnect) {
        onFirstFailure(this.err('AGENT_CONNECT_FAILED', `cannot connect to ${this.opts.path}: ${e.message}`, 'connect', {}, e));
      }
    });
    socket.on('close', () => {
      if (this.socket === socket) this.socket = undefined;
      if (wasConnected) {
        this.isConnected = false;
        this.isReady = false;
        this.failPending('AGENT_DISCONNECTED', 'connection to the agent was lost', { sent: true });
        this.emit('disconnected');
      }
      if (!this.closed && this.opts.reconnect) {
        this.retryTimer = setTimeout(() => this.attempt(), this.opts.reconnectDelayMs);
      }
    });
  }

  private probe(): void {
    const socket = this.socket;
    this.ping(24 * 3600 * 1000).then(
      (d) => { if (this.socket === socket) this.markReady(d); },
      () => { /* disconnected or closed: the next connection probes again */ },
    );
  }

  private markReady(info: AgentInfo): void {
    this.info = { agentVersion: info.agentVersion, hostname: info.hostname, kernel: info.kernel, uptimeMs: info.uptimeMs };
    if (this.isReady) return;
    this.isReady = true;
    this.emit('ready', this.info);
  }

  private onLine(line: string): void {
    let msg;
    try {
      msg = decodeLine(line);
    } catch {
      return; // not JSON: nothing can be matched to it (e.g. noise before the agent started)
    }
    if (msg.kind === 'reply') {
      const p = this.pending.get(msg.id);
      if (!p) return; // answer to a request that timed out or predates this connection
      this.pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.ok) p.resolve(msg.data);
      else p.reject(this.err('AGENT_ERROR', `agent: ${msg.error.code}: ${msg.error.message}`, p.op, { agentCode: msg.error.code }));
    } else if (msg.kind === 'event') {
      if (msg.event === 'ready') this.markReady(msg.body as unknown as AgentInfo);
      else this.emit('event', msg.event, msg.body);
    }
  }

  private failPending(code: ErrorCode, message: string, context: Record<string, boolean> = {}): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(this.err(code, message, p.op, context));
    }
  }

  private err(code: ErrorCode, message: string, op: string, context: Record<string, string | number | boolean> = {}, cause?: unknown): VmhostError {
    return new VmhostError(code, message, { op, path: this.opts.path, vm: this.opts.vm, ...context }, cause === undefined ? undefined : { cause });
  }
}
