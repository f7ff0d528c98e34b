// The BlockFile the block server opens disks with: like blockio's NodeFile, but requests up
// to `syncMaxBytes` are done with synchronous pread/pwrite on the event-loop thread. For a
// page-cache hit that is a memory copy, far cheaper than a hand-off to libuv's thread pool
// and back (which dominated the per-request cost); larger requests and fsync stay
// asynchronous. The price: a small read that misses the cache blocks the loop for one disk
// access. syncMaxBytes = 0 gives plain NodeFile behaviour.
// Writes from MIN_THREADED_WRITE up to `syncMaxBytes` go to the writer threads instead when
// there are (write-pool.ts): overwrites of cached pages then use both cores, as qemu-nbd's do.
// Every write not finished when write() returns is in `pending` until it settles, and a later
// read or write of an overlapping range waits for it; flush, truncate and close wait for all.
// So the file behaves as if each write happened in call order, which the engines' metadata
// ordering (data, then flush, then BAT/log) and NBD's FLUSH (covers every acknowledged write) need.
import { openSync, readSync, writeSync, closeSync, fstatSync, read as readCb, write as writeCb, fsync, fstat, ftruncate, constants } from 'node:fs';
import { getSystemErrorName, promisify } from 'node:util';
import type { BlockFile } from '../blockio/block-file.ts';
import { firstDataFd, mapFd, type FileExtent } from '../blockio/file-map.ts';
import { VmhostError } from '../common/errors.ts';
import { lockFd, type LockMode } from './file-lock.ts';
import { writePool, type WritePool } from './write-pool.ts';

const preadAsync = promisify(readCb);
function pwriteAsync(fd: number, buf: Uint8Array, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => writeCb(fd, buf, off, len, pos, (e, n) => (e ? reject(e) : resolve(n))));
}
const fsyncAsync = promisify(fsync);
const fstatAsync = promisify(fstat);
const ftruncateAsync = promisify(ftruncate);

export const DEFAULT_SYNC_MAX_BYTES = 256 * 1024;
/** Smaller writes (a VHDX header, a sector bitmap's sector) stay on the loop: cheaper than any hand-off. */
const MIN_THREADED_WRITE = 4096;

/** A write not yet finished: [start, end) of the file, and a promise that settles (never rejects) with it. */
interface Pending { start: number; end: number; settled: Promise<void> }

function errnoError(result: number, path: string, position: number): NodeJS.ErrnoException {
  const code = getSystemErrorName(result);
  return Object.assign(new Error(`${code}: pwrite ${path} at ${position}`), { code, errno: result, syscall: 'pwrite', path });
}

export class HostFile implements BlockFile {
  private closed = false;
  private readonly pending: Pending[] = [];
  private readonly pool: WritePool | undefined;

  private constructor(readonly fd: number, readonly name: string, readonly readOnly: boolean, private readonly syncMax: number) {
    this.pool = readOnly || syncMax < MIN_THREADED_WRITE ? undefined : writePool();
  }

  /**
   * `regularOnly`: refuse anything but a regular file (for paths a disk image chose, such as
   * parent locators). O_NONBLOCK keeps the open of a FIFO from blocking the event loop until
   * a writer appears; on a regular file it changes nothing.
   */
  static open(path: string, opts: { readOnly?: boolean; syncMaxBytes?: number; regularOnly?: boolean } = {}): HostFile {
    const readOnly = opts.readOnly ?? false;
    const fd = openSync(path, (readOnly ? constants.O_RDONLY : constants.O_RDWR) | (opts.regularOnly ? constants.O_NONBLOCK | constants.O_NOCTTY : 0));
    if (opts.regularOnly && !fstatSync(fd).isFile()) {
      closeSync(fd);
      throw new VmhostError('STORAGE_NOT_A_FILE', `${path} is not a regular file`, { path, op: 'open' });
    }
    return new HostFile(fd, path, readOnly, opts.syncMaxBytes ?? DEFAULT_SYNC_MAX_BYTES);
  }

  /** A new file (O_EXCL: never an existing one), private to its owner (0600), read-write. */
  static create(path: string): HostFile {
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    return new HostFile(fd, path, false, DEFAULT_SYNC_MAX_BYTES);
  }

  /** Take the file's OS lock (file-lock.ts): VHD_IN_USE when another open holds a conflicting one. */
  lock(mode: LockMode): Promise<void> {
    return lockFd(this.fd, mode, this.name);
  }

  async read(buf: Uint8Array, offset: number): Promise<void> {
    if (this.pending.length > 0) await this.before(offset, offset + buf.length);
    let done = 0;
    while (done < buf.length) {
      const n = buf.length - done <= this.syncMax
        ? readSync(this.fd, buf, done, buf.length - done, offset + done)
        : (await preadAsync(this.fd, buf, done, buf.length - done, offset + done)).bytesRead;
      if (n === 0) {
        buf.fill(0, done);
        return;
      }
      done += n;
    }
  }

  write(buf: Uint8Array, offset: number): Promise<void> {
    if (this.readOnly) return Promise.reject(new VmhostError('STORAGE_READ_ONLY', `${this.name} is open read-only`, { op: 'write', path: this.name }));
    const end = offset + buf.length;
    const prior = this.pending.length > 0 ? this.before(offset, end) : undefined;
    const threaded = this.pool !== undefined && buf.length >= MIN_THREADED_WRITE && buf.length <= this.syncMax;
    if (!prior && !threaded && buf.length <= this.syncMax) {
      // Done before we return: nothing to order after it.
      try {
        let done = 0;
        while (done < buf.length) done += writeSync(this.fd, buf, done, buf.length - done, offset + done);
        return Promise.resolve();
      } catch (e) {
        return Promise.reject(e);
      }
    }
    const run = prior ? prior.then(() => this.writeNow(buf, offset, threaded)) : this.writeNow(buf, offset, threaded);
    const p: Pending = { start: offset, end, settled: run.then(() => this.settle(p), () => this.settle(p)) };
    this.pending.push(p);
    return run;
  }

  /** The write itself, its turn come: on a writer thread, or the existing loop/libuv paths. */
  private async writeNow(buf: Uint8Array, offset: number, threaded: boolean): Promise<void> {
    if (threaded) {
      await new Promise<void>((resolve, reject) => this.pool!.write(this.fd, buf, offset, (r) => (r < 0 ? reject(errnoError(r, this.name, offset)) : resolve())));
      return;
    }
    let done = 0;
    while (done < buf.length) {
      done += buf.length - done <= this.syncMax
        ? writeSync(this.fd, buf, done, buf.length - done, offset + done)
        : await pwriteAsync(this.fd, buf, done, buf.length - done, offset + done);
    }
  }

  private settle(p: Pending): void {
    const i = this.pending.indexOf(p);
    if (i >= 0) this.pending.splice(i, 1);
  }

  /** Settles when every pending write overlapping [start, end) has; undefined when none does. */
  private before(start: number, end: number): Promise<void> | undefined {
    let one: Promise<void> | undefined;
    let many: Promise<void>[] | undefined;
    for (const p of this.pending) {
      if (p.start >= end || p.end <= start) continue;
      if (!one) one = p.settled;
      else (many ??= [one]).push(p.settled);
    }
    return many ? Promise.all(many).then(() => undefined) : one;
  }

  /** Every write started so far has settled. */
  private async allWritten(): Promise<void> {
    while (this.pending.length > 0) await Promise.all(this.pending.map((p) => p.settled));
  }

  async mapData(offset: number, length: number): Promise<FileExtent[]> {
    return mapFd(this.fd, offset, length);
  }

  firstDataNow(offset: number, length: number): number | undefined {
    return this.closed ? undefined : firstDataFd(this.fd, offset, length);
  }

  async flush(): Promise<void> {
    await this.allWritten();
    await fsyncAsync(this.fd);
  }

  async size(): Promise<number> {
    return (await fstatAsync(this.fd)).size;
  }

  async truncate(size: number): Promise<void> {
    await this.allWritten();
    await ftruncateAsync(this.fd, size);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // A writer thread must never write into a descriptor number that was closed and reused.
    await this.allWritten();
    closeSync(this.fd);
  }
}
