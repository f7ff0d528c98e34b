// A capture point: frames written to a classic pcap file (src/packet's encoder) that tshark
// reads. Records are buffered and written in batches (at 64 KiB, on the next tick, and on
// stop) so a capture costs little per frame. Depends on packet.
//
// A capture runs on the frame path, which guest traffic drives: it must never take the daemon
// down nor fill the disk. So the file is bounded (`maxBytes`, the pcap header included: the
// capture stops before the record that would cross it), and a write error (ENOSPC, EIO) stops
// the capture instead of throwing into a socket handler; either way `onStop` says why, once.
// The file is opened O_NOFOLLOW (a symlink at the path is refused, not written through) and
// O_EXCL unless `overwrite`, mode 0600 (guest traffic is private).
import { closeSync, constants, fchmodSync, openSync, writeSync } from 'node:fs';
import { pcapHeader, pcapRecord } from '../packet/index.ts';

const { O_CREAT, O_EXCL, O_NOFOLLOW, O_TRUNC, O_WRONLY } = constants;

/** Default cap of a capture file: 1 GiB. */
export const DEFAULT_CAPTURE_MAX_BYTES = 1 << 30;

export type CaptureStopReason = 'max-bytes' | 'write-error';

export interface CaptureResult { path: string; frames: number; bytes: number }

export interface CaptureStop extends CaptureResult { reason: CaptureStopReason; error?: string }

export interface PcapCaptureOptions {
  snaplen?: number;
  /** The file never grows beyond this many bytes. Default DEFAULT_CAPTURE_MAX_BYTES. */
  maxBytes?: number;
  /** Replace an existing file (still never through a symlink). */
  overwrite?: boolean;
  /** The capture stopped by itself (cap reached, write failed): called once, from the frame path. */
  onStop?: (stop: CaptureStop) => void;
}

export class PcapCapture {
  private fd: number;
  private chunks: Uint8Array[] = [];
  private pending = 0;
  private scheduled = false;
  private readonly snaplen: number;
  private readonly maxBytes: number;
  /** Bytes in the file plus those buffered for it. */
  private size = 0;
  frames = 0;

  /** Throws (ENOENT, EEXIST, ELOOP for a symlink, …) when the file cannot be created. */
  constructor(readonly path: string, private readonly opts: PcapCaptureOptions = {}) {
    this.snaplen = opts.snaplen ?? 65535;
    this.maxBytes = opts.maxBytes ?? DEFAULT_CAPTURE_MAX_BYTES;
    const header = pcapHeader({ snaplen: this.snaplen, nanoseconds: true });
    if (this.maxBytes < header.length) throw new RangeError(`maxBytes ${this.maxBytes} is smaller than the pcap header (${header.length} bytes)`);
    this.fd = openSync(path, O_WRONLY | O_CREAT | O_NOFOLLOW | (opts.overwrite ? O_TRUNC : O_EXCL), 0o600);
    try {
      fchmodSync(this.fd, 0o600); // a replaced file keeps its old mode otherwise
      const r = writeAll(this.fd, header);
      if (r.error) throw r.error;
    } catch (e) {
      closeSync(this.fd);
      throw e;
    }
    this.size = header.length;
  }

  get running(): boolean { return this.fd >= 0; }

  write(frame: Uint8Array): void {
    if (this.fd < 0) return;
    const now = BigInt(Date.now()) * 1_000_000n + BigInt(Math.floor((performance.now() % 1) * 1e6));
    const rec = pcapRecord(frame, now, { snaplen: this.snaplen, nanoseconds: true });
    if (this.size + rec.length > this.maxBytes) { this.stop('max-bytes'); return; }
    this.chunks.push(rec);
    this.pending += rec.length;
    this.size += rec.length;
    this.frames++;
    if (this.pending >= 64 << 10) this.flush();
    else if (!this.scheduled) { this.scheduled = true; setImmediate(() => { this.scheduled = false; this.flush(); }); }
  }

  flush(): void {
    if (this.fd < 0 || this.chunks.length === 0) return;
    const data = Buffer.concat(this.chunks);
    this.chunks = [];
    this.pending = 0;
    const r = writeAll(this.fd, data);
    if (r.error) {
      // What did not reach the file is not counted (a full disk takes part of a write, then fails).
      this.size -= data.length - r.written;
      this.stop('write-error', r.error.message);
    }
  }

  /** Stopped by itself: what is buffered is written (unless writing failed), the file closed, onStop told. */
  private stop(reason: CaptureStopReason, error?: string): void {
    if (reason !== 'write-error') this.flush();
    if (this.fd < 0) return; // flush() failed and already stopped
    this.closeFd();
    this.opts.onStop?.({ path: this.path, frames: this.frames, bytes: this.size, reason, ...(error === undefined ? {} : { error }) });
  }

  private closeFd(): void {
    try { closeSync(this.fd); } catch { /* the data that matters was written (or reported) */ }
    this.fd = -1;
    this.chunks = [];
  }

  close(): CaptureResult {
    if (this.fd >= 0) {
      this.flush();
      if (this.fd >= 0) this.closeFd();
    }
    return { path: this.path, frames: this.frames, bytes: this.size };
  }
}

/** writeSync until all is written (a write may be short) or it fails; says how much got there. */
function writeAll(fd: number, data: Uint8Array): { written: number; error?: Error } {
  let written = 0;
  while (written < data.length) {
    try {
      written += writeSync(fd, data, written, data.length - written);
    } catch (e) {
      return { written, error: e as Error };
    }
  }
  return { written };
}
