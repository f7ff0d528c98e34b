// One NBD client connection: handshake, then the transmission phase. Requests are parsed
// as they arrive and run concurrently through the export's pipeline; replies go out in
// completion order (allowed by the protocol), made in and sent by a ReplyWriter: a tick's
// replies leave in one socket write where they lie next to each other in its slab. A reply to
// a write is sent only when the pipeline (and so the disk's write()) has resolved; FUA and
// FLUSH reach the disk's flush(). Misuse gets an error reply when the stream can continue
// (EINVAL, EPERM, ENOSPC) and a closed connection when it cannot (bad magic, oversized
// write payload). A disconnect mid-request drops the partial payload: nothing is written.
import type { Socket } from 'node:net';
import { isVmhostError, nbdErrnoOf, type NbdErrno } from '../../common/index.ts';
import type { IoKind, IoRequest, IoResult, Pipeline } from '../pipeline.ts';
import type { Extent } from '../../blockio/virtual-disk.ts';
import { SocketReader, ConnectionClosed } from './socket-reader.ts';
import { ReplyWriter } from './reply-writer.ts';
import { handshake, ProtocolError, type ExportDirectory, type ExportInfo, type Negotiated } from './handshake.ts';
import { simpleReply, readChunk, holeChunk, zeroPayload, errorChunk, blockStatusChunk, READ_CHUNK_PREFIX, type Handle } from './replies.ts';
import {
  REQUEST_MAGIC, REQUEST_SIZE, SIMPLE_REPLY_SIZE, MAX_PAYLOAD,
  CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM, CMD_WRITE_ZEROES, CMD_BLOCK_STATUS,
  CMD_FLAG_FUA, CMD_FLAG_NO_HOLE, CMD_FLAG_DF, CMD_FLAG_REQ_ONE,
  EPERM, EIO, EINVAL, ENOSPC, ESHUTDOWN,
} from './protocol.ts';

/** An export as the transmission phase sees it. */
export interface ServedExport extends ExportInfo {
  readonly pipeline: Pipeline;
  /** False once the export is being stopped: new requests get ESHUTDOWN. */
  readonly open: boolean;
}

const MAX_IN_FLIGHT = 128;
/**
 * Payload bytes one connection may hold: read buffers and write data of requests in flight,
 * plus replies the socket has not yet handed to the kernel. Replies count until they drain:
 * a client that sends READs and never reads the replies would otherwise have the daemon
 * queue them without bound. At the cap the connection stops reading requests (the socket is
 * paused, so the client's sends back up) until the disk and the socket have caught up. One
 * request may overshoot the cap by its own size (at most MAX_PAYLOAD).
 */
const MAX_HELD_BYTES = 64 * 1024 * 1024;
const HANDSHAKE_TIMEOUT_MS = 30_000;
/** Most block-status descriptors in one reply (the protocol lets us return fewer). */
const MAX_DESCRIPTORS = 2048;

const KIND: Partial<Record<number, IoKind>> = {
  [CMD_READ]: 'read', [CMD_WRITE]: 'write', [CMD_FLUSH]: 'flush', [CMD_TRIM]: 'trim',
  [CMD_WRITE_ZEROES]: 'write-zeroes', [CMD_BLOCK_STATUS]: 'block-status',
};

const ERRNO: Readonly<Record<NbdErrno, number>> = { EPERM, EIO, EINVAL, ENOSPC };

/** Errno on the wire for a failed request: the pipeline rejects with VmhostErrors, whose errno is in the one table. */
function wireError(e: unknown): number {
  return isVmhostError(e) ? ERRNO[nbdErrnoOf(e.code)] : EIO;
}

export class NbdConnection<E extends ServedExport> {
  private reader: SocketReader;
  private negotiated: Negotiated<E> | undefined;
  private inFlight = 0;
  private inFlightBytes = 0;
  private drained: (() => void) | undefined;
  private readonly writer: ReplyWriter;
  /** The writer's allocator, bound once. */
  private readonly alloc: (n: number) => Buffer;
  private ended = false;
  /** Error numbers sent, by request type (for tests and diagnostics). */
  readonly stats = { requests: 0, errors: 0 };

  constructor(private readonly socket: Socket, private readonly dir: ExportDirectory<E>, private readonly onError: (e: unknown) => void = () => undefined) {
    this.reader = new SocketReader(socket);
    this.writer = new ReplyWriter(socket);
    this.alloc = (n) => this.writer.alloc(n);
    socket.on('error', () => undefined);
    socket.on('drain', () => this.wakeIfBelow());
    // A closed socket never drains: let the request loop run on into the closed reader.
    socket.on('close', () => this.wake());
  }

  get exportName(): string | undefined {
    return this.negotiated?.export.name;
  }

  /** Runs the session to its end; never rejects. */
  async run(): Promise<void> {
    try {
      // A client that never finishes negotiating does not hold a connection forever.
      const timer = setTimeout(() => this.close(true), HANDSHAKE_TIMEOUT_MS);
      try {
        this.negotiated = await handshake(this.socket, this.reader, this.dir);
      } finally {
        clearTimeout(timer);
      }
      if (this.negotiated) await this.transmission(this.negotiated);
    } catch (e) {
      if (!(e instanceof ConnectionClosed)) this.onError(e);
    } finally {
      await this.idle();
      this.close();
    }
  }

  /**
   * Ends the session. Replies already queued are flushed first; `now` (server stop) cuts the
   * socket at once. In-flight requests still finish on the disk; their replies are dropped.
   */
  close(now = false): void {
    if (this.ended) return;
    this.ended = true;
    if (now || this.socket.destroyed) {
      this.socket.destroy();
      return;
    }
    this.writer.close();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  /** Resolves when no request of this connection is running. */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const prev = this.drained;
      this.drained = () => {
        prev?.();
        resolve();
      };
    });
  }

  private send(b: Buffer): void {
    if (this.ended) return;
    this.writer.send(b);
  }

  private async transmission(n: Negotiated<E>): Promise<void> {
    const exp = n.export;
    for (;;) {
      if (this.overLimit()) await this.waitBelow();
      const h = this.reader.takeNow(REQUEST_SIZE) ?? (await this.reader.take(REQUEST_SIZE));
      if (h.readUInt32BE(0) !== REQUEST_MAGIC) throw new ProtocolError(`bad request magic 0x${h.readUInt32BE(0).toString(16)}`);
      const flags = h.readUInt16BE(4);
      const type = h.readUInt16BE(6);
      const handle: Handle = { hi: h.readUInt32BE(8), lo: h.readUInt32BE(12) };
      const offHi = h.readUInt32BE(16);
      const offset = offHi * 2 ** 32 + h.readUInt32BE(20);
      const length = h.readUInt32BE(24);
      this.stats.requests++;

      let data: Buffer | undefined;
      if (type === CMD_WRITE) {
        if (length > MAX_PAYLOAD) {
          // The payload cannot be skipped cheaply: answer, then end the session.
          this.replyError(handle, EINVAL, `write of ${length} bytes exceeds the ${MAX_PAYLOAD}-byte maximum`);
          throw new ProtocolError('oversized write payload');
        }
        data = this.reader.takeNow(length) ?? (await this.reader.take(length));
      }
      if (type === CMD_DISC) return;

      const kind = KIND[type];
      if (!kind) {
        this.replyError(handle, EINVAL, `unknown command ${type}`);
        continue;
      }
      const bad = this.validate(exp, kind, flags, offset, length, offHi);
      if (bad) {
        this.replyError(handle, bad[0], bad[1]);
        continue;
      }
      const req: IoRequest = {
        kind, offset, length, fua: (flags & CMD_FLAG_FUA) !== 0, noHole: (flags & CMD_FLAG_NO_HOLE) !== 0, exportName: exp.name,
      };
      if (kind === 'read' && exp.pipeline.readZeroNow(req)) {
        // Zeros known from a cached map: answered here, no promise, no buffer (the common
        // case of a guest or a copy reading unallocated space).
        this.sendZeros(handle, offset, length, flags);
        continue;
      }
      let reply: Buffer | undefined;
      if (kind === 'read') {
        // The reply (header + data in one buffer) is made only when the disk has data for it:
        // a read of zeros is answered from sendZeros without a buffer of its own.
        const structured = n.structuredReplies;
        req.buffer = () => {
          reply = structured ? readChunk(handle, offset, length, false, this.alloc) : simpleReply(0, handle, length, this.alloc);
          return reply.subarray(structured ? READ_CHUNK_PREFIX : SIMPLE_REPLY_SIZE);
        };
      } else if (data) req.data = data;
      this.inFlight++;
      const bytes = kind === 'read' || kind === 'write' ? length : 0;
      this.inFlightBytes += bytes;
      exp.pipeline.run(req).then(
        (r) => this.complete(req, handle, flags, reply, r, bytes),
        (e) => this.failed(req, handle, e, bytes),
      );
    }
  }

  private validate(exp: E, kind: IoKind, flags: number, offset: number, length: number, offHi: number): [number, string] | undefined {
    if (!exp.open) return [ESHUTDOWN, 'export is shutting down'];
    let allowed = CMD_FLAG_FUA;
    if (kind === 'write-zeroes') allowed |= CMD_FLAG_NO_HOLE;
    if (kind === 'read' && this.negotiated!.structuredReplies) allowed |= CMD_FLAG_DF;
    if (kind === 'block-status') allowed |= CMD_FLAG_REQ_ONE;
    if (flags & ~allowed) return [EINVAL, `flags 0x${flags.toString(16)} not valid for ${kind}`];
    if (kind === 'flush') return undefined;
    if (kind === 'block-status' && !this.negotiated!.baseAllocation) return [EINVAL, 'no metadata context was negotiated'];
    const writes = kind === 'write' || kind === 'trim' || kind === 'write-zeroes';
    if (writes && exp.readOnly) return [EPERM, 'export is read-only'];
    if (length === 0) return [EINVAL, 'zero-length request'];
    if ((kind === 'read' || kind === 'write') && length > MAX_PAYLOAD) return [EINVAL, `request of ${length} bytes exceeds the ${MAX_PAYLOAD}-byte maximum`];
    const size = exp.size;
    if (offHi >= 2 ** 21 || offset + length > size) return [writes ? ENOSPC : EINVAL, `request [${offset}, +${length}) is past the end of the disk (${size})`];
    const min = exp.minimumBlockSize;
    if (offset % min !== 0 || (length % min !== 0 && offset + length !== size)) return [EINVAL, `request not aligned to ${min} bytes`];
    return undefined;
  }

  private complete(req: IoRequest, h: Handle, flags: number, reply: Buffer | undefined, r: IoResult, bytes: number): void {
    if (req.kind === 'read') {
      if (r.zero) this.sendZeros(h, req.offset, req.length, flags);
      else this.send(reply!);
    }
    else if (req.kind === 'block-status') {
      let ext: Extent[] = r.extents ?? [];
      if (ext.length === 0) ext = [{ offset: req.offset, length: req.length, hole: false, zero: false }];
      this.send(blockStatusChunk(h, this.negotiated!.baseAllocation, ext, flags & CMD_FLAG_REQ_ONE ? 1 : MAX_DESCRIPTORS, this.alloc));
    } else this.send(simpleReply(0, h, 0, this.alloc));
    this.done(bytes);
  }

  /**
   * A read of zeros: one OFFSET_HOLE chunk when structured replies allow it; a header and the
   * shared zero buffer otherwise (simple replies, or DF, which asks for one data chunk).
   */
  private sendZeros(h: Handle, offset: number, length: number, flags: number): void {
    if (this.negotiated!.structuredReplies && !(flags & CMD_FLAG_DF)) {
      this.send(holeChunk(h, offset, length, this.alloc));
      return;
    }
    this.send(this.negotiated!.structuredReplies ? readChunk(h, offset, length, true, this.alloc) : simpleReply(0, h, 0, this.alloc));
    this.send(zeroPayload(length));
  }

  private failed(req: IoRequest, h: Handle, e: unknown, bytes: number): void {
    const errno = wireError(e);
    if (errno === EIO) this.onError(e);
    this.replyError(h, errno, e instanceof Error ? e.message : String(e));
    this.done(bytes);
  }

  private replyError(h: Handle, errno: number, message: string): void {
    this.stats.errors++;
    // With structured replies a read must be answered by chunks; errors carry their message.
    if (this.negotiated?.structuredReplies) this.send(errorChunk(h, errno, message, this.alloc));
    else this.send(simpleReply(errno, h, 0, this.alloc));
  }

  private done(bytes: number): void {
    this.inFlight--;
    this.inFlightBytes -= bytes;
    this.wakeIfBelow();
    if (this.inFlight === 0 && this.drained) {
      const d = this.drained;
      this.drained = undefined;
      d();
    }
  }

  /** Requests or held bytes (in flight + queued replies) at their cap. */
  private overLimit(): boolean {
    return this.inFlight >= MAX_IN_FLIGHT || this.inFlightBytes + this.writer.pending + this.socket.writableLength >= MAX_HELD_BYTES;
  }

  private below: (() => void) | undefined;

  /**
   * Waits until the connection is below its caps again. Reading stops meanwhile, so the
   * client's requests wait in its own socket buffer instead of our memory. Wakes on a
   * finished request or a drained socket (whichever lowers the count) or a closed socket.
   */
  private waitBelow(): Promise<void> {
    this.reader.pause();
    return new Promise((resolve) => {
      this.below = resolve;
    });
  }

  private wakeIfBelow(): void {
    if (this.below && !this.overLimit()) this.wake();
  }

  private wake(): void {
    const b = this.below;
    this.below = undefined;
    b?.();
  }
}
