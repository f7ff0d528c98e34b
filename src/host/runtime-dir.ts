// The short directory for unix sockets when the data dir is too deep for sun_path (108 bytes):
// <tmpdir>/vmhost-<hash of the data dir>. Its name is predictable, so a local user could create
// it first (or a symlink by that name) and have the daemon put its NBD and switch sockets
// where they can be swapped. So the daemon creates it 0700 and then checks with lstat that it
// is a real directory, owned by us, mode 0700, before anything goes into it; otherwise it
// refuses to start (RUNTIME_DIR_UNSAFE) rather than pick a path an admin could not predict.
// When QEMU runs as its own user (qemu-user.ts), every socket QEMU reaches after dropping root
// lives here (never in the data dir), and the root and its nbd/ and sw/ dirs are 0710 of that
// user's group: it can reach a socket whose name it was given, not list or create any.
import { createHash } from 'node:crypto';
import { chmod, chown, lstat, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VmhostError } from '../common/index.ts';

/** Socket dirs below the data dir longer than this move to the short root (the NBD export names are 41 characters). */
export const SOCKET_DIR_BUDGET = 60;
/** A VM's run dir: its longest socket path must stay within this. */
export const VM_SOCKET_BUDGET = 100;
/** A VM id (UUID) as it appears in paths. */
const ID_LENGTH = 36;

/** The short root for this data dir's sockets (not created). */
export function shortSocketRoot(dataDir: string): string {
  return join(tmpdir(), `vmhost-${createHash('sha256').update(dataDir).digest('hex').slice(0, 12)}`);
}

/** The socket dirs QEMU connects into after start: block server and switch ports. */
export const QEMU_SOCKET_DIRS = ['nbd', 'sw'] as const;

/**
 * A socket dir `<dataDir>/run/<name>`, or `<short root>/<name>` when that is too long or QEMU
 * runs as its own user (`qemuGroup`).
 */
export function socketDirFor(dataDir: string, name: string, qemuGroup?: number): string {
  const dir = join(dataDir, 'run', name);
  return dir.length > SOCKET_DIR_BUDGET || qemuGroup !== undefined ? join(shortSocketRoot(dataDir), name) : dir;
}

/** Does any socket of this data dir (switch, NBD, a VM's run dir) live under the short root? */
export function usesShortSocketRoot(dataDir: string, qemuGroup?: number): boolean {
  return qemuGroup !== undefined || join(dataDir, 'run', 'nbd').length > SOCKET_DIR_BUDGET
    || join(dataDir, 'vms', 'x'.repeat(ID_LENGTH), 'run', 'serial.sock').length > VM_SOCKET_BUDGET;
}

/**
 * Create `dir` if missing and check that it is ours: a directory (not a symlink), owned by this
 * process's uid, mode 0700 — or, with `group` (the QEMU user's), 0710 of that group; one of ours
 * in the other of these two modes is switched over. Throws RUNTIME_DIR_UNSAFE naming what is wrong.
 */
export async function ensurePrivateDir(dir: string, group?: number): Promise<void> {
  await mkdir(dir, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'EEXIST') throw e; });
  let st = await lstat(dir);
  const uid = process.getuid?.() ?? 0;
  const unsafe = (why: string): VmhostError => new VmhostError('RUNTIME_DIR_UNSAFE',
    `The socket directory '${dir}' is not private (${why}); it may have been created by another user to intercept this host's sockets. Remove it and start again, or use a shorter --data-dir`,
    { path: dir, reason: why });
  if (st.isSymbolicLink()) throw unsafe('it is a symbolic link');
  if (!st.isDirectory()) throw unsafe('it is not a directory');
  if (st.uid !== uid) throw unsafe(`it is owned by uid ${st.uid}, not ${uid}`);
  const want = group === undefined ? 0o700 : 0o710;
  const mode = st.mode & 0o777;
  if (mode !== 0o700 && mode !== 0o710) throw unsafe(`its mode is ${mode.toString(8).padStart(4, '0')}, not ${want.toString(8).padStart(4, '0')}`);
  if (mode !== want || (group !== undefined && st.gid !== group)) {
    await chown(dir, uid, group ?? st.gid);
    await chmod(dir, want);
    st = await lstat(dir);
    if ((st.mode & 0o777) !== want) throw unsafe('its mode could not be set');
  }
}
