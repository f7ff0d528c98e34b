// An in-memory BlockFile for tests and fuzzing. Storage is a map of 64 KiB chunks, so a
// file with a large logical size (e.g. a 64 TiB VHDX's sparse tail) costs only what is
// written. Bytes never written read as zeros, like a sparse file.
import type { BlockFile } from './block-file.ts';

const CHUNK = 64 * 1024;

export class MemoryFile implements BlockFile {
  readonly name: string;
  readonly readOnly: boolean;
  private chunks = new Map<number, Uint8Array>();
  private length = 0;
  private closed = false;

  constructor(name = 'memory', opts: { readOnly?: boolean } = {}) {
    this.name = name;
    this.readOnly = opts.readOnly ?? false;
  }

  /** A new MemoryFile holding a copy of `bytes`. */
  static from(bytes: Uint8Array, name = 'memory', opts: { readOnly?: boolean } = {}): MemoryFile {
    const f = new MemoryFile(name, opts);
    f.writeSync(bytes, 0);
    return f;
  }

  /** A copy sharing nothing with this file (optionally read-only). */
  clone(opts: { readOnly?: boolean; name?: string } = {}): MemoryFile {
    const f = new MemoryFile(opts.name ?? this.name, { readOnly: opts.readOnly ?? this.readOnly });
    for (const [k, v] of this.chunks) f.chunks.set(k, v.slice());
    f.length = this.length;
    return f;
  }

  /** Bytes actually held (for "file stays small" checks). */
  get allocatedBytes(): number {
    return this.chunks.size * CHUNK;
  }

  readSync(buf: Uint8Array, offset: number): void {
    let done = 0;
    while (done < buf.length) {
      const pos = offset + done;
      const idx = Math.floor(pos / CHUNK);
      const inChunk = pos - idx * CHUNK;
      const n = Math.min(CHUNK - inChunk, buf.length - done);
      const c = pos < this.length ? this.chunks.get(idx) : undefined;
      const valid = Math.max(0, Math.min(n, this.length - pos));
      if (c) {
        buf.set(c.subarray(inChunk, inChunk + valid), done);
        if (valid < n) buf.fill(0, done + valid, done + n);
      } else {
        buf.fill(0, done, done + n);
      }
      done += n;
    }
  }

  writeSync(buf: Uint8Array, offset: number): void {
    let done = 0;
    while (done < buf.length) {
      const pos = offset + done;
      const idx = Math.floor(pos / CHUNK);
      const inChunk = pos - idx * CHUNK;
      const n = Math.min(CHUNK - inChunk, buf.length - done);
      let c = this.chunks.get(idx);
      if (!c) {
        c = new Uint8Array(CHUNK);
        this.chunks.set(idx, c);
      }
      c.set(buf.subarray(done, done + n), inChunk);
      done += n;
    }
    this.length = Math.max(this.length, offset + buf.length);
  }

  truncateSync(size: number): void {
    if (size < this.length) {
      const keep = Math.ceil(size / CHUNK);
      for (const k of [...this.chunks.keys()]) if (k >= keep) this.chunks.delete(k);
      const last = this.chunks.get(keep - 1);
      if (last && size % CHUNK !== 0) last.fill(0, size % CHUNK);
    }
    this.length = size;
  }

  private check(write: boolean): void {
    if (this.closed) throw new Error(`${this.name}: file is closed`);
    if (write && this.readOnly) throw new Error(`${this.name}: file is read-only`);
  }

  async read(buf: Uint8Array, offset: number): Promise<void> {
    this.check(false);
    this.readSync(buf, offset);
  }
  async write(buf: Uint8Array, offset: number): Promise<void> {
    this.check(true);
    this.writeSync(buf, offset);
  }
  async flush(): Promise<void> {
    this.check(false);
  }
  async size(): Promise<number> {
    return this.length;
  }
  async truncate(size: number): Promise<void> {
    this.check(true);
    this.truncateSync(size);
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}
