// A VM NIC's port: a unix stream socket the switch listens on; QEMU's
// `-netdev stream,server=off,addr.type=unix,addr.path=…` connects to it. One peer at a time:
// a new connection replaces the old one (QEMU restarted, a VM restored from a saved state),
// and the port outlives its peer's disconnects. A stale socket file from a previous daemon is
// replaced, so a restarted daemon recreates its ports at the same paths. A record whose
// length is beyond any Ethernet frame cuts the connection (the stream cannot be resynchronised).
// Reads land end to end in a slab (record-slab.ts, through Node's onread): no buffer per read,
// and a record split across two reads needs no copy.
// When the peer does not read and more than `maxQueuedBytes` wait, frames are dropped
// ('full') rather than queued without bound. Frames sent during one tick leave in one write
// (writev): a run of records forwarded unchanged from one read of another socket port is
// sent as the slice of that read (no copy); other frames are copied behind their headers
// into a staging buffer. Each connection's send buffer is grown (growSendBuffer: why and by
// how much) through the switch's native addon where it is built. Depends on framing,
// record-slab, port-io, udp-batch (the addon).
import { createServer, Socket, type OnReadOpts, type Server, type SocketConstructorOpts } from 'node:net';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { VmhostError } from '../common/errors.ts';
import { shareSocketWithGroup } from '../common/socket-group.ts';
import { FrameDecoder, lastRecord } from './framing.ts';
import { RecordSlab, pin, unpin } from './record-slab.ts';
import type { PortIo, PortIoEvents, SendResult } from './port-io.ts';
import { udpAddon } from './udp-batch.ts';

/** Size of a fresh staging buffer: many small frames per allocation. */
const STAGE_BYTES = 64 << 10;

/**
 * Send buffer asked for a port's connection (the kernel doubles it: 1 MiB of its accounting).
 * A busy port reads up to its peer's send buffer per wake-up (QEMU's default, ~200 KiB) and
 * writes it on in one piece; into the kernel's default buffer (the same ~200 KiB) that write
 * found room for only part nearly every time: a partial write, libuv's immediate retry failing
 * with EAGAIN, EPOLLOUT armed and disarmed (two epoll_ctl), and another wake-up for the rest.
 * With room for about five such reads the port makes one write per read (BENCHMARKS.md, "fewer
 * system calls per MiB"). The cost: toward a guest that reads slowly up to 1 MiB more waits in
 * the kernel before the port counts as congested (`highWaterBytes` counts only what Node holds).
 */
const SEND_BUFFER_BYTES = 512 << 10;

export class SocketPortIo implements PortIo {
  private server: Server | null = null;
  private sock: Socket | null = null;
  private readonly decoder = new FrameDecoder();
  private paused = false;
  private closed = false;
  /** Pieces waiting for the end of the tick, written together. */
  private parts: Uint8Array[] = [];
  private batchBytes = 0;
  /** The records being sent as they came, bytes [runStart, runEnd) of runBuffer (null: none). */
  private runBuffer: ArrayBufferLike | null = null;
  private runStart = 0;
  private runEnd = 0;
  /**
   * Where other frames are copied behind their headers: bytes [stageStart, stageEnd) are not
   * yet in `parts`; bytes before stageStart may still be in a pending write and are never
   * written again, so the space after them is used until it runs out.
   */
  private stage: Buffer = Buffer.alloc(0);
  private stageStart = 0;
  private stageEnd = 0;
  private drainWaiters: (() => void)[] = [];
  maxQueuedBytes = 4 << 20;
  /**
   * Read a connection into a RecordSlab (onread) where Node allows it, else through 'data'
   * events and a FrameDecoder; tests turn it off to cover the fallback.
   */
  slabReads = true;
  /** Above this the port reports itself congested (the switch then holds unicast senders). */
  highWaterBytes = 512 << 10;
  /** SO_SNDBUF of the current connection as the kernel reports it; null: the kernel's default (no addon). */
  sendBufferBytes: number | null = null;

  private constructor(readonly endpoint: string, private readonly ev: PortIoEvents) {}

  /** `group`: given rw on the socket file (switch.ts SwitchOptions.socketGroup). */
  static async listen(path: string, ev: PortIoEvents, group?: number): Promise<SocketPortIo> {
    const io = new SocketPortIo(path, ev);
    mkdirSync(dirname(path), { recursive: true });
    rmSync(path, { force: true });
    // Accepted paused: the connection's handle may move to a Socket reading with onread (withOnread).
    const server = createServer({ pauseOnConnect: true }, (s) => io.accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new VmhostError('SWITCH_PORT_LISTEN', `cannot listen on ${path}: ${e.message}`, { op: 'add-port', path }, { cause: e })));
      server.listen(path, () => resolve());
    });
    server.on('error', () => { /* listening errors after start are not expected; accept errors are per socket */ });
    io.server = server;
    await shareSocketWithGroup(path, group).catch((e: unknown) => {
      server.close();
      throw new VmhostError('SWITCH_PORT_LISTEN', `cannot give group ${group} access to ${path}: ${(e as Error).message}`, { op: 'add-port', path }, { cause: e });
    });
    return io;
  }

  get connected(): boolean { return this.sock !== null; }

  private accept(accepted: Socket): void {
    if (this.closed) { accepted.destroy(); return; }
    if (this.sock) this.sock.destroy();
    const onFrame = (f: Uint8Array): void => this.ev.onFrame(f, true);
    const corrupt = (): void => {
      this.ev.onError('stream-corrupt');
      s.destroy();
      this.drop(s);
    };
    const slab = new RecordSlab();
    const slabbed = this.slabReads ? withOnread(accepted, {
      buffer: () => slab.next(),
      // true: keep reading (a pause comes from pause(), not from here).
      callback: (n: number) => { if (this.sock === s && !slab.filled(n, onFrame)) corrupt(); return true; },
    }) : null;
    const s = slabbed ?? accepted;
    if (!slabbed) {
      this.decoder.reset();
      s.on('data', (chunk: Buffer) => { if (this.sock === s && !this.decoder.push(chunk, onFrame)) corrupt(); });
    }
    this.sock = s;
    this.sendBufferBytes = growSendBuffer(s);
    if (this.paused) s.pause(); else s.resume();
    s.on('error', () => { /* reset by peer: the close handler does the rest */ });
    s.on('close', () => this.drop(s));
    this.ev.onConnection?.(true);
  }

  private drop(s: Socket): void {
    if (this.sock !== s) return;
    this.sock = null;
    this.ev.onConnection?.(false);
  }

  send(bytes: Uint8Array, start: number, length: number, _sourcePort?: string, framed = false): SendResult {
    const s = this.sock;
    if (!s) return 'not-connected';
    if (s.writableLength + this.batchBytes > this.maxQueuedBytes) return 'full';
    // A bound method, not a closure over `s`: that would allocate a context on every call.
    if (this.batchBytes === 0) process.nextTick(this.flushLater, s);
    // Frames are kept by reference until the end of the tick: the pipeline never changes a
    // frame after delivering it (inject() takes ownership of its bytes for that reason).
    if (framed) {
      // The frame scanRecords just handed out (the usual case) says where it lies without the view's accessors.
      const known = bytes === lastRecord.frame;
      const buffer = known ? lastRecord.buffer! : bytes.buffer;
      const at = (known ? lastRecord.start : bytes.byteOffset - 4) + start;
      const end = at + 4 + length;
      if (this.runBuffer === buffer && this.runEnd === at) {
        this.runEnd = end;
      } else {
        this.closeStage();
        this.closeRun();
        this.runBuffer = buffer;
        this.runStart = at;
        this.runEnd = end;
      }
    } else {
      this.closeRun();
      this.copyToStage(bytes, start, length);
    }
    this.batchBytes += 4 + length;
    return 'ok';
  }

  private copyToStage(bytes: Uint8Array, start: number, length: number): void {
    // Part of `bytes` (a tunnel's inner frame) is copied with all of `bytes` and then moved down
    // over what came before it (copyWithin): no view of the part per frame (view + copy cost
    // about 50 ns for a 64-B inner frame, copy + move about 30). What lies past the part is
    // left beyond stageEnd, to be written over.
    const need = 4 + bytes.length;
    if (this.stage.length - this.stageEnd < need) {
      this.closeStage();
      this.stage = Buffer.allocUnsafe(Math.max(STAGE_BYTES, need));
      this.stageStart = this.stageEnd = 0;
    }
    // Byte stores: Buffer's writeUInt32BE validates its arguments per call (2 % of a 64-B frame's receiving host, cpu profile).
    const st = this.stage, at = this.stageEnd, n = length;
    st[at] = n >>> 24; st[at + 1] = (n >>> 16) & 0xff; st[at + 2] = (n >>> 8) & 0xff; st[at + 3] = n & 0xff;
    st.set(bytes, at + 4);
    if (start !== 0) st.copyWithin(at + 4, at + 4 + start, at + 4 + start + length);
    this.stageEnd += 4 + length;
  }

  private closeStage(): void {
    if (this.stageEnd === this.stageStart) return;
    this.parts.push(this.stage.subarray(this.stageStart, this.stageEnd));
    this.stageStart = this.stageEnd;
  }

  private closeRun(): void {
    if (this.runBuffer === null) return;
    this.parts.push(Buffer.from(this.runBuffer, this.runStart, this.runEnd - this.runStart));
    this.runBuffer = null;
  }

  private readonly flushLater = (s: Socket): void => this.flush(s);

  private flush(s: Socket): void {
    this.closeRun();
    this.closeStage();
    const parts = this.parts;
    this.parts = [];
    this.batchBytes = 0;
    if (this.sock !== s || parts.length === 0) return;
    if (parts.length === 1) { write(s, parts[0]!); return; }
    s.cork();
    for (const p of parts) write(s, p);
    s.uncork();
  }

  get congested(): boolean { return (this.sock?.writableLength ?? 0) + this.batchBytes > this.highWaterBytes; }

  // Every sender held by this port waits here; one 'drain'/'close' listener pair per socket
  // serves them all, however many ports are held (a listener per sender tripped Node's
  // MaxListeners warning on a busy port).
  whenDrained(cb: () => void): void {
    const s = this.sock;
    if (!s || !this.congested) { cb(); return; }
    this.drainWaiters.push(cb);
    if (this.drainWaiters.length > 1) return;
    const fire = (): void => {
      s.off('drain', fire);
      s.off('close', fire);
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    };
    s.on('drain', fire);
    s.on('close', fire);
  }

  pause(): void { this.paused = true; this.sock?.pause(); }
  resume(): void { this.paused = false; this.sock?.resume(); }

  async close(): Promise<void> {
    this.closed = true;
    this.sock?.destroy();
    this.sock = null;
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((r) => server.close(() => r()));
    rmSync(this.endpoint, { force: true });
  }
}

/**
 * The accepted connection re-wrapped in a Socket that reads with `onread`, or null when this
 * Node does not expose the handle. Node offers `onread` only to sockets it creates itself
 * (connect, or from an `fd`), not to the ones a server accepts; so the accepted socket's
 * handle — `_handle`, an internal, the same from Node 12 to 22 — moves to a new Socket before
 * anything was read (the server accepts paused). The old wrapper is destroyed without its
 * handle: that is how the server counts the connection as closed.
 */
function withOnread(accepted: Socket, onread: OnReadOpts): Socket | null {
  const holder = accepted as unknown as { _handle: { readStart?: unknown } | null };
  const handle = holder._handle;
  if (typeof handle?.readStart !== 'function') return null;
  holder._handle = null;
  accepted.destroy();
  return new Socket({ handle, onread } as SocketConstructorOpts);
}

/**
 * Asks for SEND_BUFFER_BYTES on the connection's descriptor (`_handle.fd`, the same internal
 * withOnread relies on) and returns the SO_SNDBUF the kernel then reports, or null when the
 * addon is not built or the handle shows no descriptor: the port works as before, with the
 * default buffer and its extra system calls.
 */
function growSendBuffer(s: Socket): number | null {
  const fd = (s as unknown as { _handle: { fd?: unknown } | null })._handle?.fd;
  const addon = udpAddon();
  return addon && typeof fd === 'number' && fd >= 0 ? addon.sendBuffer(fd, SEND_BUFFER_BYTES) : null;
}

/**
 * A write that keeps its bytes' buffer pinned until Node is done with them (RecordSlab reuses
 * no pinned slab). The callback comes even for a write that completed at once (on the next
 * tick, before any further read) and for one cut short by the socket's end.
 */
function write(s: Socket, part: Uint8Array): void {
  const buf = part.buffer;
  pin(buf);
  s.write(part, () => unpin(buf));
}
