// Where a connection's replies are made and how they leave. Replies are carved out of a slab
// (one ArrayBuffer for many replies, where a Buffer.allocUnsafe of a 4 KiB read's reply — over
// the pool's 4 KiB limit — was a malloc and an ArrayBuffer of its own per read), queued in
// order, and handed to the socket once per tick: replies that lie next to each other in the
// slab leave as one buffer (a tick's hole chunks, reads that completed in the order they were
// made), so the socket sees one write per tick instead of a cork, a write per reply and an
// uncork. A region of a slab is never handed out twice: once queued, it belongs to the socket,
// which keeps it (and the slab) for as long as a short write or EAGAIN leaves it unsent.
import type { Socket } from 'node:net';

/** Bytes per slab; a reply larger than a quarter of it gets a buffer of its own. */
const SLAB = 256 * 1024;

export class ReplyWriter {
  private slab = Buffer.allocUnsafe(0);
  private used = 0;
  /** Replies queued since the last flush, in order, but for the last run of contiguous bytes. */
  private queue: Buffer[] = [];
  /** That last run: bytes [runStart, runEnd) of runMemory (undefined: none). */
  private runMemory: ArrayBufferLike | undefined;
  private runStart = 0;
  private runEnd = 0;
  private queuedBytes = 0;
  private scheduled = false;
  private closed = false;

  constructor(private readonly socket: Socket) {}

  /** Bytes queued and not yet handed to the socket (counted against the connection's cap with the socket's own). */
  get pending(): number {
    return this.queuedBytes;
  }

  /** `n` bytes to write a reply into, then `send`. Not sent until then, so it may wait for the disk. */
  alloc(n: number): Buffer {
    if (n > SLAB / 4) return Buffer.allocUnsafe(n);
    if (this.used + n > this.slab.length) {
      this.slab = Buffer.allocUnsafe(SLAB);
      this.used = 0;
    }
    const b = this.slab.subarray(this.used, this.used + n);
    this.used += n;
    return b;
  }

  /** Queue `b` (from `alloc`, or a shared buffer never modified) after every reply sent before it. */
  send(b: Buffer): void {
    if (this.closed || this.socket.destroyed) return;
    if (this.runMemory === b.buffer && this.runEnd === b.byteOffset) this.runEnd += b.length;
    else {
      this.endRun();
      this.runMemory = b.buffer;
      this.runStart = b.byteOffset;
      this.runEnd = b.byteOffset + b.length;
    }
    this.queuedBytes += b.length;
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  private endRun(): void {
    if (this.runMemory === undefined) return;
    this.queue.push(Buffer.from(this.runMemory, this.runStart, this.runEnd - this.runStart));
    this.runMemory = undefined;
  }

  /** Hand everything queued to the socket now (also done by itself once per tick). */
  flush(): void {
    this.scheduled = false;
    this.endRun();
    const q = this.queue;
    if (q.length === 0) return;
    this.queue = [];
    this.queuedBytes = 0;
    if (this.closed || this.socket.destroyed) return;
    if (q.length === 1) {
      this.socket.write(q[0]!);
      return;
    }
    this.socket.cork();
    for (const b of q) this.socket.write(b);
    this.socket.uncork();
  }

  /** Flush what is queued and take no more (the connection is ending). */
  close(): void {
    this.flush();
    this.closed = true;
  }
}
