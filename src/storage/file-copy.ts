// Copying a disk file as a file (Export-VM, Import-VM -Copy, Move-VMStorage's frozen files, and
// Move-VM's to another host): only the runs the hole map (blockio/file-map.ts) says hold data
// are read and written, so a sparse VHDX stays sparse and a mostly empty one copies in a moment.
// The source is locked shared while it is read, so no writer (a VM, a VHD cmdlet, another
// daemon) changes it under the copy; a file already served by this process as a parent
// (shared) can be copied, a served leaf cannot (VHD_IN_USE). A local target is new (O_EXCL)
// and fsync-ed before the copy counts as done; a failed copy removes it.
import { constants } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { mapFd } from '../blockio/index.ts';
import { VmhostError } from '../common/errors.ts';
import { lockFd } from './file-lock.ts';

const CHUNK = 4 * 1024 * 1024;

/** Where `sendFileData` writes a file's data runs, at their offsets; the rest must read as zeros there. */
export type FileDataWrite = (buf: Uint8Array, offset: number) => Promise<void>;

/**
 * The data runs of `src` (locked shared while read) written through `write`, one chunk at a
 * time (the buffer is reused once a write resolves); `progress(bytesDone, bytesTotal)` after
 * each chunk. Returns the file's size and the bytes of data copied.
 */
export async function sendFileData(src: string, write: FileDataWrite, progress: (done: number, total: number) => void = () => undefined): Promise<{ size: number; copied: number }> {
  const from = await open(src, constants.O_RDONLY);
  try {
    await lockFd(from.fd, 'shared', src);
    const size = (await from.stat()).size;
    const data = mapFd(from.fd, 0, size).filter((x) => x.data);
    const total = data.reduce((n, x) => n + x.length, 0);
    const buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(total, 1)));
    let copied = 0;
    for (const run of data) {
      for (let at = run.offset; at < run.offset + run.length; at += CHUNK) {
        const len = Math.min(CHUNK, run.offset + run.length - at);
        const { bytesRead } = await from.read(buf, 0, len, at);
        if (bytesRead !== len) throw new VmhostError('IO_ERROR', `${src} became shorter while it was copied`, { path: src, op: 'copy', offset: at });
        await write(buf.subarray(0, len), at);
        copied += len;
        progress(copied, total);
      }
    }
    return { size, copied };
  } finally {
    await from.close();
  }
}

/** Copy `src` to the new file `dst`, holes kept; `progress(bytesDone, bytesTotal)` after each chunk. Returns the bytes of data copied. */
export async function copyDiskFile(src: string, dst: string, progress: (done: number, total: number) => void = () => undefined): Promise<number> {
  const to = await open(dst, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600).catch((e: NodeJS.ErrnoException) => {
    throw new VmhostError(e.code === 'EEXIST' ? 'ALREADY_EXISTS' : 'IO_ERROR', `cannot create ${dst}: ${e.message}`, { path: dst, op: 'copy' }, { cause: e });
  });
  try {
    const { size, copied } = await sendFileData(src, async (b, at) => { await to.write(b, 0, b.length, at); }, progress);
    await to.truncate(size);
    await to.sync();
    await to.close();
    return copied;
  } catch (e) {
    await to.close().catch(() => undefined);
    await rm(dst, { force: true });
    throw e;
  }
}
