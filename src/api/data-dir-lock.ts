// One daemon per data dir, held by the kernel: the daemon binds an abstract-namespace unix
// socket (Linux: a name starting with NUL, no file) named after the data dir's device and
// inode. A second bind of the same name fails with EADDRINUSE for as long as the holder lives,
// and the kernel frees the name the moment the holder dies (SIGKILL included), so a stale pid
// file or a pid reused by another program cannot block a restart, and two daemons started at
// once cannot both win. Chosen over a flock helper (Node has no flock) because it needs no
// native code and no second process. Device+inode rather than the path: a symlink or a bind
// mount of the same directory gives the same name. Limit: abstract names are per network
// namespace; daemons in different netns on one data dir are not excluded.
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { VmhostError } from '../common/index.ts';

export interface DataDirLock { readonly name: string; release(): Promise<void> }

/** The abstract socket name for a data dir (without the leading NUL). */
export async function lockName(dataDir: string): Promise<string> {
  const st = await stat(dataDir, { bigint: true });
  return `vmhostd-lock/${st.dev}:${st.ino}`;
}

/** Take the data dir's lock for this process's lifetime; DATA_DIR_IN_USE when a live daemon holds it. */
export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  const name = await lockName(dataDir);
  const server: Server = createServer((c) => c.destroy());
  await new Promise<void>((ok, fail) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      fail(e.code === 'EADDRINUSE'
        ? new VmhostError('DATA_DIR_IN_USE', `another vmhostd already serves ${dataDir}`, { path: dataDir, lock: name })
        : new VmhostError('IO_ERROR', `cannot lock ${dataDir}: ${e.message}`, { path: dataDir, lock: name }, { cause: e }));
    });
    server.listen(`\0${name}`, () => ok());
  });
  // The lock must not keep the process alive by itself (the API server does that).
  server.unref();
  return { name, release: () => new Promise((ok) => server.close(() => ok())) };
}
