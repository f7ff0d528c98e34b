// A socket port's reads laid end to end in one slab, for Node's `onread` (reads into buffers
// the caller hands out) instead of a fresh 64 KiB buffer per read and the 'data' stream
// machinery. A record split across two reads is contiguous once the second read lands, so
// every record is delivered as a view of the slab preceded by its header — forwarded as it
// came, without a copy, and one run per read to write on. Only the incomplete record at a full
// slab's end is copied into the next slab. A full slab is read into again only when nothing can
// still refer to its frames: the one before the current slab is reused (fresh pages cost a
// page fault each, about a tenth of the switch's CPU per frame when every slab was new) if no
// write or send that took bytes from it is still in progress — writers `pin` what they hand to
// the kernel and `unpin` when it is done — and every frame handed out from it was handed out
// before at least one earlier read returned (so the end-of-tick flushes have run). Whoever
// keeps a frame beyond the call that delivered it copies it (port-io.ts). Depends on framing.
import { STREAM_MAX_RECORD, scanRecords } from './framing.ts';

/**
 * A read is offered at least this much room: all a busy peer can have waiting. A unix stream
 * peer with the default send buffer (~208 KiB) may have up to about 1.5 times that queued (the
 * kernel lets the last write of up to half the buffer start below the limit): reads of a
 * 1514-byte flow measured 224–256 KiB for half of them. With 64 KiB here, a fifth of the reads
 * filled the room a slab had left and the rest of what waited took one more read, one more
 * dispatch and one more write (BENCHMARKS.md, "fewer system calls per MiB").
 */
const MIN_READ = 256 << 10;
/**
 * Room for the largest incomplete record and a read of MIN_READ behind it, about two busy
 * reads. Pages are touched only as reads land, so an idle port's slab costs little memory.
 */
export const SLAB_BYTES = 512 << 10;

/** Buffers some write or send still refers to, with how many such (weak: a lost unpin only stops reuse). */
const pinned = new WeakMap<ArrayBufferLike, number>();

/** A write or send is about to hand `buf`'s bytes to the kernel, maybe later: no slab reuse until unpin. */
export function pin(buf: ArrayBufferLike): void { pinned.set(buf, (pinned.get(buf) ?? 0) + 1); }

/** The write or send that pinned `buf` is done (or failed). */
export function unpin(buf: ArrayBufferLike): void {
  const n = (pinned.get(buf) ?? 1) - 1;
  if (n > 0) pinned.set(buf, n);
  else pinned.delete(buf);
}

export class RecordSlab {
  private slab: Uint8Array = new Uint8Array(0);
  /** The slab before the current one: the next to reuse, if nothing pins it. */
  private previous: Uint8Array | null = null;
  /** Where the record not yet complete starts. */
  private start = 0;
  /** End of the bytes read. */
  private end = 0;

  constructor(private readonly slabBytes = SLAB_BYTES) {
    if (slabBytes < 4 + STREAM_MAX_RECORD + MIN_READ) throw new RangeError(`a slab of ${slabBytes} bytes cannot hold a whole record and a read`);
  }

  /** The buffer the next read fills (onread's `buffer` function). */
  next(): Uint8Array {
    if (this.slab.length - this.end < MIN_READ) {
      const prev = this.previous;
      const fresh = prev !== null && !pinned.has(prev.buffer) ? prev : Buffer.allocUnsafe(this.slabBytes);
      fresh.set(this.slab.subarray(this.start, this.end));
      this.end -= this.start;
      this.start = 0;
      this.previous = this.slab.length === this.slabBytes ? this.slab : null;
      this.slab = fresh;
    }
    return new Uint8Array(this.slab.buffer, this.slab.byteOffset + this.end, this.slab.length - this.end);
  }

  /**
   * `n` bytes were read into the buffer `next()` gave: calls onFrame for each record they
   * complete. False at a corrupt record length (see scanRecords): drop the connection.
   */
  filled(n: number, onFrame: (frame: Uint8Array) => void): boolean {
    this.end += n;
    const at = scanRecords(this.slab, this.start, this.end, onFrame);
    if (at < 0) return false;
    this.start = at;
    return true;
  }
}
