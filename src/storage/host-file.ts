// The BlockFile the block server opens disks with: like blockio's NodeFile, but requests up
// to `syncMaxBytes` are done with synchronous pread/pwrite on the event-loop thread. For a
// page-cache hit that is a memory copy, far cheaper than a hand-off to libuv's thread pool
// and back (which dominated the per-request cost); larger requests and fsync stay
// asynchronous. The price: a small read that misses the cache blocks the loop for one disk
// access. syncMaxBytes = 0 gives plain NodeFile behaviour.
import { openSync, readSync, writeSync, closeSync, fstatSync, read as readCb, write as writeCb, fsync, fstat, ftruncate, constants } from 'node:fs';
import { promisify } from 'node:util';
import type { BlockFile } from '../blockio/block-file.ts';
import { firstDataFd, mapFd, type FileExtent } from '../blockio/file-map.ts';
import { VmhostError } from '../common/errors.ts';
import { lockFd, type LockMode } from './file-lock.ts';

const preadAsync = promisify(readCb);
function pwriteAsync(fd: number, buf: Uint8Array, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => writeCb(fd, buf, off, len, pos, (e, n) => (e ? reject(e) : resolve(n))));
}
const fsyncAsync = promisify(fsync);
const fstatAsync = promisify(fstat);
const ftruncateAsync = promisify(ftruncate);

export const DEFAULT_SYNC_MAX_BYTES = 256 * 1024;

export class HostFile implements BlockFile {
  private closed = false;

  private constructor(readonly fd: number, readonly name: string, readonly readOnly: boolean, private readonly syncMax: number) {}

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

  async write(buf: Uint8Array, offset: number): Promise<void> {
    if (this.readOnly) throw new VmhostError('STORAGE_READ_ONLY', `${this.name} is open read-only`, { op: 'write', path: this.name });
    let done = 0;
    while (done < buf.length) {
      done += buf.length - done <= this.syncMax
        ? writeSync(this.fd, buf, done, buf.length - done, offset + done)
        : await pwriteAsync(this.fd, buf, done, buf.length - done, offset + done);
    }
  }

  async mapData(offset: number, length: number): Promise<FileExtent[]> {
    return mapFd(this.fd, offset, length);
  }

  firstDataNow(offset: number, length: number): number | undefined {
    return this.closed ? undefined : firstDataFd(this.fd, offset, length);
  }

  async flush(): Promise<void> {
    await fsyncAsync(this.fd);
  }

  async size(): Promise<number> {
    return (await fstatAsync(this.fd)).size;
  }

  async truncate(size: number): Promise<void> {
    await ftruncateAsync(this.fd, size);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}
