// A disk on another host that one writes to: the mirror target of a shared-nothing Move-VM.
// The destination daemon listens (one TCP port per move) and writes what arrives into the new
// disk files it created; the source's mirror (mirror.ts) holds a `RemoteDisk`, a VirtualDisk
// whose writes, trims and flushes go over the connection. Why not NBD: the mirror only ever
// writes, the destination must know when a copy is complete (`finish`: flushed, the stream may
// close) as opposed to dropped (the source died or gave up: its files go), and the connection
// must open with the move's secret — a few framed messages say all that; NBD would need a
// client here and an authentication it lacks. The connection is TLS: the listener presents the
// destination daemon's certificate and the source writes the secret (and the disk) only to the
// one whose fingerprint the move's prepare answered (common/pinned-tls.ts).
//
// Wire (big-endian): the client opens with the secret (SECRET_BYTES), a u16 length and the
// disk's name (a drive id). The server answers u32 length + JSON DiskShape, or closes. Then
// requests: u32 op, u32 seq, u64 offset, u32 length, u32 0, followed by `length` bytes for a
// write; replies: u32 seq, u32 status (0 ok), u32 length + message. Requests are applied in
// arrival order, one at a time, and answered in that order: overlapping writes land as sent.
import { timingSafeEqual } from 'node:crypto';
import { createServer, type TLSSocket } from 'node:tls';
import type { DiskFormat, DiskType, Extent, VirtualDisk } from '../blockio/virtual-disk.ts';
import { isVmhostError, VmhostError } from '../common/errors.ts';
import { connectPinned, pinnedTo, type TlsIdentity } from '../common/pinned-tls.ts';
import type { DiskShape } from './mirror-file.ts';
import { SocketReader } from './nbd/socket-reader.ts';

export const SECRET_BYTES = 32;
const HELLO_MS = 10_000;
const HEADER = 24;
/** Larger than any request the mirror makes (1 MiB chunks): a bigger one is a broken peer. */
const MAX_WRITE = 64 * 1024 * 1024;
const enum Op { Write = 1, Trim = 2, Flush = 3, Finish = 4 }

export interface DiskStreamSink {
  /** The disk writes to `name` go to; undefined refuses the connection. */
  open(name: string): VirtualDisk | undefined;
  /** The source finished `name`: every write applied and flushed. */
  finished(name: string): void;
  /** The stream of `name` ended before it finished (the source failed, gave up or died). */
  lost(name: string, why: string): void;
}

export interface DiskStreamServer { readonly port: number; close(): Promise<void> }

/** The destination's TLS listener on `host` (a port the kernel picks) presenting `identity`: connections that open with `secret` write to the sink's disks. */
export async function serveDiskStream(host: string, identity: TlsIdentity, secret: Buffer, sink: DiskStreamSink): Promise<DiskStreamServer> {
  const open = new Set<TLSSocket>();
  const server = createServer({ key: identity.key, cert: identity.cert, handshakeTimeout: HELLO_MS }, (s) => {
    open.add(s);
    s.on('close', () => open.delete(s));
    s.setNoDelay(true);
    void session(s, secret, sink).catch(() => s.destroy());
  });
  await new Promise<void>((ok, fail) => { server.once('error', fail); server.listen(0, host, () => ok()); });
  return {
    port: (server.address() as { port: number }).port,
    close: async () => {
      for (const s of open) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function session(s: TLSSocket, secret: Buffer, sink: DiskStreamSink): Promise<void> {
  const r = new SocketReader(s);
  const timer = setTimeout(() => s.destroy(), HELLO_MS);
  let name: string;
  try {
    const head = await r.take(SECRET_BYTES + 2);
    if (!timingSafeEqual(head.subarray(0, SECRET_BYTES), secret)) { s.destroy(); return; }
    name = (await take(r, head.readUInt16BE(SECRET_BYTES))).toString('utf8');
  } finally {
    clearTimeout(timer); // also when the peer left mid-hello (one that refused our certificate)
  }
  const disk = sink.open(name);
  if (!disk) { s.destroy(); return; }
  const shape: DiskShape = { format: disk.format, type: disk.type, virtualSize: disk.virtualSize, logicalSectorSize: disk.logicalSectorSize, physicalSectorSize: disk.physicalSectorSize };
  const hello = Buffer.from(JSON.stringify(shape));
  s.write(Buffer.concat([u32(hello.length), hello]));
  let finished = false;
  try {
    for (;;) {
      const h = await r.take(HEADER);
      const op = h.readUInt32BE(0), seq = h.readUInt32BE(4), offset = Number(h.readBigUInt64BE(8)), length = h.readUInt32BE(16);
      let error = '';
      if (op === Op.Write && length > MAX_WRITE) { s.destroy(); break; }
      const data = op === Op.Write ? await take(r, length) : undefined;
      try {
        if (finished) throw new Error('the disk was finished');
        if (op === Op.Write) await disk.write(data!, offset);
        else if (op === Op.Trim) await disk.trim(offset, length);
        else if (op === Op.Flush) await disk.flush();
        else if (op === Op.Finish) { await disk.flush(); finished = true; sink.finished(name); }
        else throw new Error(`unknown request ${op}`);
      } catch (e) {
        error = (e as Error).message || 'failed';
      }
      const msg = Buffer.from(error);
      s.write(Buffer.concat([u32(seq), u32(error === '' ? 0 : 1), u32(msg.length), msg]));
    }
  } catch { /* the connection ended */ }
  if (!finished) sink.lost(name, 'the stream from the source ended before the disk was complete');
}

/** The source's end: a write-only VirtualDisk shaped like the destination's new file. */
export class RemoteDisk implements VirtualDisk {
  readonly format: DiskFormat;
  readonly type: DiskType;
  readonly virtualSize: number;
  readonly logicalSectorSize: number;
  readonly physicalSectorSize: number;
  readonly readOnly = false;
  private seq = 0;
  private readonly pending = new Map<number, { ok: () => void; fail: (e: Error) => void }>();
  private failure: VmhostError | undefined;

  private constructor(private readonly socket: TLSSocket, private readonly where: string, shape: DiskShape) {
    this.format = shape.format;
    this.type = shape.type;
    this.virtualSize = shape.virtualSize;
    this.logicalSectorSize = shape.logicalSectorSize;
    this.physicalSectorSize = shape.physicalSectorSize;
  }

  /**
   * Connect to the destination's listener for disk `name` (its certificate must be `fingerprint`),
   * opening with the move's secret; `localAddress`: the source's own address on the migration
   * network the stream must use.
   */
  static async connect(host: string, port: number, fingerprint: string, secret: Buffer, name: string, localAddress?: string): Promise<RemoteDisk> {
    const where = `${name} on ${host}:${port}`;
    const socket = await connectPinned({ host, port, localAddress }, pinnedTo(fingerprint, `the destination's disk stream listener ${host}:${port}`))
      .catch((e: unknown) => { throw isVmhostError(e, 'TLS_CERTIFICATE_CHANGED') ? e : remoteFailed(where, 'the destination cannot be reached', e); });
    socket.setNoDelay(true);
    const id = Buffer.from(name);
    socket.write(Buffer.concat([secret, Buffer.from([id.length >> 8, id.length & 0xff]), id]));
    const r = new SocketReader(socket);
    try {
      const len = (await r.take(4)).readUInt32BE(0);
      const disk = new RemoteDisk(socket, where, JSON.parse((await take(r, len)).toString('utf8')) as DiskShape);
      void disk.replies(r);
      return disk;
    } catch (e) {
      socket.destroy();
      throw remoteFailed(where, 'the destination refused the disk stream or closed it', e);
    }
  }

  private async replies(r: SocketReader): Promise<void> {
    try {
      for (;;) {
        const h = await r.take(12);
        const seq = h.readUInt32BE(0), status = h.readUInt32BE(4);
        const msg = (await take(r, h.readUInt32BE(8))).toString('utf8');
        const p = this.pending.get(seq);
        this.pending.delete(seq);
        if (status === 0) p?.ok();
        else p?.fail(remoteFailed(this.where, msg));
      }
    } catch (e) {
      this.failure ??= remoteFailed(this.where, 'the connection to the destination closed', e);
      for (const p of this.pending.values()) p.fail(this.failure);
      this.pending.clear();
    }
  }

  private request(op: Op, offset: number, length: number, data?: Uint8Array): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const seq = (this.seq = (this.seq + 1) >>> 0);
    const h = Buffer.alloc(HEADER);
    h.writeUInt32BE(op, 0);
    h.writeUInt32BE(seq, 4);
    h.writeBigUInt64BE(BigInt(offset), 8);
    h.writeUInt32BE(length, 16);
    return new Promise<void>((ok, fail) => {
      this.pending.set(seq, { ok, fail });
      this.socket.write(h);
      if (data) this.socket.write(data);
    });
  }

  write(buf: Uint8Array, offset: number): Promise<void> { return this.request(Op.Write, offset, buf.length, buf); }
  trim(offset: number, length: number): Promise<void> { return this.request(Op.Trim, offset, length); }
  flush(): Promise<void> { return this.request(Op.Flush, 0, 0); }
  /** Everything is written: the destination flushes and keeps the disk (a close before this discards it). */
  finish(): Promise<void> { return this.request(Op.Finish, 0, 0); }

  read(): Promise<void> { return Promise.reject(this.writeOnly('read')); }
  blockStatus(): Promise<Extent[]> { return Promise.reject(this.writeOnly('block-status')); }

  async close(): Promise<void> {
    this.failure ??= remoteFailed(this.where, 'closed');
    await new Promise<void>((r) => {
      if (this.socket.destroyed) { r(); return; }
      this.socket.once('close', () => r());
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 5000).unref();
    });
  }

  private writeOnly(step: string): VmhostError {
    return new VmhostError('STORAGE_UNSUPPORTED', `${this.where}: a disk stream is write-only (${step})`, { op: step });
  }
}

/** SocketReader.take, which needs n > 0. */
function take(r: SocketReader, n: number): Promise<Buffer> {
  return n === 0 ? Promise.resolve(Buffer.alloc(0)) : r.take(n);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}

function remoteFailed(where: string, why: string, cause?: unknown): VmhostError {
  return new VmhostError('STORAGE_REMOTE_FAILED', `disk stream ${where}: ${why}`, { op: 'disk-stream', disk: where }, { cause });
}
