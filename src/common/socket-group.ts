// Unix sockets that an unprivileged QEMU connects to after it dropped root (`-runas`, issue 16
// item 6): the daemon runs with umask 077, so a socket it binds is 0700 and QEMU's connect()
// would get EACCES. Such a socket is handed to the QEMU user's group instead: group rw, owner
// kept (so QEMU cannot chmod it open to others), and it lives in a 0710 dir of that group
// (host/runtime-dir.ts) that only root and the group can enter. Depends on nothing.
import { chmod, chown } from 'node:fs/promises';

/** Give group `gid` read/write on the socket at `path` (no-op when `gid` is undefined). */
export async function shareSocketWithGroup(path: string, gid: number | undefined): Promise<void> {
  if (gid === undefined) return;
  await chown(path, process.getuid?.() ?? 0, gid);
  await chmod(path, 0o660);
}
