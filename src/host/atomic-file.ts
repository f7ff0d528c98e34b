// Write-then-rename with fsync of file and directory: a daemon crash or power cut leaves
// either the old or the new file, never half of one. The temp file has a random name and is
// created with O_EXCL|O_NOFOLLOW, so a name planted in the directory (a symlink to
// /etc/shadow, say) is refused instead of followed; any failure (ENOSPC included) removes it
// and leaves the old file as it was. Callers update their in-memory state only after this
// resolves ("save first, then update memory").
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rename, readFile, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { VmhostError } from '../common/index.ts';

const { O_CREAT, O_EXCL, O_NOFOLLOW, O_WRONLY } = constants;

/** Files in the data dir are the owner's alone (issue 16 item 4): 0600 unless a caller says otherwise. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${randomBytes(6).toString('hex')}`);
  try {
    const fh = await open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
    try {
      // open()'s mode is filtered by the umask; chmod says exactly what the file gets.
      await fh.chmod(mode);
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    const err = e as NodeJS.ErrnoException;
    throw new VmhostError('IO_ERROR', `Cannot write '${path}': ${err.message}`, { op: 'write-file', path, errno: err.code ?? '' }, { cause: e });
  }
  const dir = await open(dirname(path), 'r');
  try { await dir.sync(); } finally { await dir.close(); }
}

export async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}
