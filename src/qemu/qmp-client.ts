// Our QMP client: one unix-socket connection to one QEMU, greeting + qmp_capabilities,
// typed commands matched to answers by `id`, events as an EventEmitter and an async iterator.
// Depends on: src/common (errors), ./qmp-schema (types), ./error-codes.

import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { VmhostError } from '../common/index.ts';
import { QemuErrorCode } from './error-codes.ts';
import type { QmpArgs, QmpCommandName, QmpEvent, QmpEventName, QmpReturn } from './qmp-schema.ts';

export interface QmpConnectOptions {
  /** Give up connecting (incl. greeting + capabilities) after this long. Default 5000 ms. */
  timeoutMs?: number;
  /** Default per-command timeout. Default 30000 ms. */
  commandTimeoutMs?: number;
}

export interface QmpExecuteOptions { timeoutMs?: number }

interface Pending {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

interface QmpMessage {
  QMP?: { version: { qemu: { major: number; minor: number; micro: number }; package: string } };
  return?: unknown;
  error?: { class: string; desc: string };
  event?: string;
  data?: unknown;
  timestamp?: { seconds: number; microseconds: number };
  id?: unknown;
}

export interface QmpClientEvents {
  /** Every event. */
  event: [QmpEvent];
  /** The connection is gone (QEMU exited or close() was called). Emitted once. */
  close: [];
}

/**
 * A connected QMP session. Create with `QmpClient.connect(path)`.
 * Commands may be issued concurrently; answers are matched by `id`.
 */
export class QmpClient extends EventEmitter<QmpClientEvents> {
  readonly socketPath: string;
  /** QEMU version from the greeting. */
  readonly version: { major: number; minor: number; micro: number; package: string };
  private readonly socket: Socket;
  private readonly pending = new Map<number, Pending>();
  private readonly commandTimeoutMs: number;
  private nextId = 1;
  private closed = false;
  private readonly closedPromise: Promise<void>;

  private constructor(socketPath: string, socket: Socket, greeting: NonNullable<QmpMessage['QMP']>, buffered: string, commandTimeoutMs: number) {
    super();
    this.socketPath = socketPath;
    this.socket = socket;
    this.commandTimeoutMs = commandTimeoutMs;
    this.version = { ...greeting.version.qemu, package: greeting.version.package };
    let resolveClosed!: () => void;
    this.closedPromise = new Promise((r) => { resolveClosed = r; });
    let buf = buffered;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line) this.onLine(line);
      }
    });
    socket.on('error', () => { /* 'close' follows and does the work */ });
    socket.resume();
    socket.on('close', () => {
      this.closed = true;
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
        this.pending.delete(id);
        p.reject(new VmhostError(QemuErrorCode.QMP_DISCONNECTED, `QMP connection closed while '${p.command}' was pending`,
          { op: 'qmp', command: p.command, path: this.socketPath }));
      }
      resolveClosed();
      this.emit('close');
    });
  }

  /** Connect, read the greeting, negotiate capabilities. */
  static async connect(socketPath: string, opts: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    const ctx = { op: 'qmp-connect', path: socketPath };
    const { socket, greeting, rest } = await new Promise<{ socket: Socket; greeting: NonNullable<QmpMessage['QMP']>; rest: string }>((resolve, reject) => {
      const s = connect(socketPath);
      let buf = '';
      const fail = (msg: string, cause?: unknown) => {
        clearTimeout(timer);
        s.removeAllListeners();
        s.on('error', () => {});
        s.destroy();
        reject(new VmhostError(QemuErrorCode.QMP_CONNECT_FAILED, msg, ctx, { cause }));
      };
      const timer = setTimeout(() => fail(`QMP greeting not received within ${timeoutMs} ms`), timeoutMs);
      s.setEncoding('utf8');
      s.on('error', (e) => fail(`cannot connect to QMP socket ${socketPath}: ${e.message}`, e));
      s.on('close', () => fail('QMP socket closed before the greeting'));
      s.on('data', (chunk: string) => {
        buf += chunk;
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        let msg: QmpMessage;
        try { msg = JSON.parse(buf.slice(0, nl)) as QmpMessage; } catch (e) { fail('QMP greeting is not JSON', e); return; }
        if (!msg.QMP) { fail('first QMP message is not a greeting'); return; }
        clearTimeout(timer);
        s.pause(); // nothing may be emitted before the client's own 'data' handler is attached
        s.removeAllListeners();
        resolve({ socket: s, greeting: msg.QMP, rest: buf.slice(nl + 1) });
      });
    });
    const client = new QmpClient(socketPath, socket, greeting, rest, opts.commandTimeoutMs ?? 30000);
    try {
      await client.execute('qmp_capabilities', undefined, { timeoutMs });
    } catch (e) {
      client.close();
      throw new VmhostError(QemuErrorCode.QMP_CONNECT_FAILED, 'qmp_capabilities failed', ctx, { cause: e });
    }
    return client;
  }

  get isClosed(): boolean { return this.closed; }

  /** Resolves when the connection is gone. */
  whenClosed(): Promise<void> { return this.closedPromise; }

  /** Run one command. Rejects with QMP_ERROR / QMP_TIMEOUT / QMP_DISCONNECTED (VmhostError). */
  execute<K extends QmpCommandName>(command: K, ...rest: QmpArgs<K> extends undefined
    ? [args?: undefined, opts?: QmpExecuteOptions]
    : [args: QmpArgs<K>, opts?: QmpExecuteOptions]): Promise<QmpReturn<K>> {
    const [args, opts] = rest as [unknown, QmpExecuteOptions | undefined];
    return this.send(command, args, opts?.timeoutMs ?? this.commandTimeoutMs) as Promise<QmpReturn<K>>;
  }

  /** Escape hatch for a command not (yet) in the schema map. */
  executeRaw(command: string, args?: Record<string, unknown>, opts?: QmpExecuteOptions): Promise<unknown> {
    return this.send(command, args, opts?.timeoutMs ?? this.commandTimeoutMs);
  }

  private send(command: string, args: unknown, timeoutMs: number): Promise<unknown> {
    if (this.closed) {
      return Promise.reject(new VmhostError(QemuErrorCode.QMP_DISCONNECTED, `QMP connection is closed ('${command}' not sent)`,
        { op: 'qmp', command, path: this.socketPath }));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new VmhostError(QemuErrorCode.QMP_TIMEOUT, `QMP command '${command}' got no answer within ${timeoutMs} ms`,
          { op: 'qmp', command, path: this.socketPath, timeoutMs }));
      }, timeoutMs);
      this.pending.set(id, { command, resolve, reject, timer });
      const msg: Record<string, unknown> = { execute: command, id };
      if (args !== undefined) msg.arguments = args;
      this.socket.write(JSON.stringify(msg) + '\n');
    });
  }

  private onLine(line: string): void {
    let msg: QmpMessage;
    try { msg = JSON.parse(line) as QmpMessage; } catch { return; /* QEMU only sends JSON; ignore garbage */ }
    if (msg.event !== undefined) {
      const ev = { event: msg.event, data: msg.data, timestamp: msg.timestamp ?? { seconds: 0, microseconds: 0 } } as QmpEvent;
      this.emit('event', ev);
      return;
    }
    if (typeof msg.id !== 'number') return;
    const p = this.pending.get(msg.id);
    if (!p) return; // answer after its timeout
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.error) {
      p.reject(new VmhostError(QemuErrorCode.QMP_ERROR, `QMP '${p.command}' failed: ${msg.error.desc}`,
        { op: 'qmp', command: p.command, qmpClass: msg.error.class, qmpDesc: msg.error.desc, path: this.socketPath }));
    } else {
      p.resolve(msg.return);
    }
  }

  /**
   * Wait for the next event with this name (and matching `predicate`), or reject with
   * QMP_TIMEOUT / QMP_DISCONNECTED. Register before triggering the action that causes it.
   */
  waitForEvent<N extends QmpEventName>(name: N, opts: { timeoutMs?: number; predicate?: (e: QmpEvent<N>) => boolean } = {}): Promise<QmpEvent<N>> {
    const timeoutMs = opts.timeoutMs ?? this.commandTimeoutMs;
    return new Promise((resolve, reject) => {
      const cleanup = () => { clearTimeout(timer); this.off('event', onEvent); this.off('close', onClose); };
      const onEvent = (e: QmpEvent) => {
        if (e.event !== name) return;
        const ev = e as QmpEvent<N>;
        if (opts.predicate && !opts.predicate(ev)) return;
        cleanup(); resolve(ev);
      };
      const onClose = () => {
        cleanup();
        reject(new VmhostError(QemuErrorCode.QMP_DISCONNECTED, `QMP connection closed while waiting for ${name}`, { op: 'qmp-event', event: name }));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new VmhostError(QemuErrorCode.QMP_TIMEOUT, `no ${name} event within ${timeoutMs} ms`, { op: 'qmp-event', event: name, timeoutMs }));
      }, timeoutMs);
      if (this.closed) { onClose(); return; }
      this.on('event', onEvent);
      this.on('close', onClose);
    });
  }

  /** All events from now until the connection closes (or the loop breaks). */
  async *events(): AsyncGenerator<QmpEvent, void, undefined> {
    const queue: QmpEvent[] = [];
    let wake: (() => void) | undefined;
    const onEvent = (e: QmpEvent) => { queue.push(e); wake?.(); };
    const onClose = () => wake?.();
    this.on('event', onEvent);
    this.on('close', onClose);
    try {
      for (;;) {
        while (queue.length > 0) yield queue.shift()!;
        if (this.closed) return;
        await new Promise<void>((r) => { wake = r; });
        wake = undefined;
      }
    } finally {
      this.off('event', onEvent);
      this.off('close', onClose);
    }
  }

  /** Close the connection; pending commands reject with QMP_DISCONNECTED. QEMU keeps running. */
  close(): Promise<void> {
    if (!this.closed) this.socket.destroy();
    return this.closedPromise;
  }
}
