// Everything in the data dir is the daemon user's alone (issue 16 item 4): saved state is the
// guest's whole RAM, serial logs and configs may hold secrets. The daemon sets umask 077 first
// thing, so every file it or its children (QEMU: serial log, pid file, qemu.log; saved state)
// create is 0600 and every dir 0700; files created before (an older daemon, an admin's umask)
// are fixed once at start by `privatizeTree`.
import { chmod, lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

export const PRIVATE_UMASK = 0o077;

/** chmod go-rwx on `root` and everything below it; symlinks are not followed (nor changed). */
export async function privatizeTree(root: string): Promise<number> {
  let changed = 0;
  const walk = async (p: string): Promise<void> => {
    const st = await lstat(p).catch(() => undefined);
    if (!st || st.isSymbolicLink()) return;
    if ((st.mode & 0o077) !== 0) {
      await chmod(p, st.mode & 0o700);
      changed++;
    }
    if (st.isDirectory()) for (const name of await readdir(p).catch(() => [])) await walk(join(p, name));
  };
  await walk(root);
  return changed;
}
