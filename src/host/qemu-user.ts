// Who QEMU runs as (issue 16 item 6). A daemon running as root hands every QEMU `-runas` a
// dedicated system user (default `vmhost-qemu`, made by scripts/install-deps.sh; `--qemu-user`
// picks another, `--qemu-user root` keeps QEMU root). QEMU opens its own files as root and
// drops rights after init; what it reaches later (NBD and switch sockets, the save socket)
// sits in the short socket root, a 0710 dir of the user's group outside the data dir, so the
// data dir itself stays 0700/0600 (runtime-dir.ts). Not root: QEMU runs as the daemon's user.
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { VmhostError } from '../common/index.ts';

export interface QemuUser { name: string; uid: number; gid: number }

export const DEFAULT_QEMU_USER = 'vmhost-qemu';

/** The user QEMU drops to: undefined when the daemon is not root or `name` is root. Throws QEMU_USER_UNKNOWN. */
export async function resolveQemuUser(name: string | undefined): Promise<QemuUser | undefined> {
  if (process.getuid?.() !== 0) {
    if (name !== undefined) throw new VmhostError('INVALID_ARGUMENT', '--qemu-user needs a daemon running as root (QEMU can only change user from root)', { param: 'qemu-user' });
    return undefined;
  }
  const user = name ?? DEFAULT_QEMU_USER;
  if (user === 'root') return undefined;
  const line = await promisify(execFile)('getent', ['passwd', user]).then((r) => r.stdout.trim(), () => '');
  const [, , uid, gid] = line.split(':');
  if (!line || uid === undefined || gid === undefined || Number(uid) === 0) {
    throw new VmhostError('QEMU_USER_UNKNOWN',
      `QEMU user '${user}' does not exist or is root: run scripts/install-deps.sh (creates ${DEFAULT_QEMU_USER}), pass --qemu-user NAME, or --qemu-user root to keep QEMU root`,
      { user });
  }
  return { name: user, uid: Number(uid), gid: Number(gid) };
}

/**
 * Can `user` read `path`? Asked of the kernel by running test(1) as that user (permissions,
 * ACLs and every directory on the way count), for files QEMU opens after dropping root.
 */
export function qemuUserCanRead(user: QemuUser, path: string): Promise<boolean> {
  return new Promise((ok) => {
    const p = spawn('test', ['-r', path], { uid: user.uid, gid: user.gid, stdio: 'ignore' });
    p.on('error', () => ok(false));
    p.on('exit', (code) => ok(code === 0));
  });
}
