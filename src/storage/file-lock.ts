// Ownership of disk files between processes: a BSD flock on the open file description. Node
// has no flock: the native addon (blockio/file-map.ts) calls flock(2); without it, flock(1)
// from util-linux locks a descriptor it inherits, and an inherited descriptor shares our open
// file description: the lock is taken on it and stays when flock(1) exits. Either way it
// holds until we close our descriptor (or the process ends, a SIGKILL included). Writers lock
// exclusive; parents in a chain and read-only opens lock shared. Two opens of one file in one
// process are two descriptions, so a daemon cannot take its own served file twice either.
import { spawn } from 'node:child_process';
import { nativeLock } from '../blockio/index.ts';
import { VmhostError } from '../common/errors.ts';

export type LockMode = 'exclusive' | 'shared';

/** flock(1)'s exit code when -n finds the lock taken (its default -E). */
const CONFLICT_EXIT = 1;

/** Lock `fd` (the open file of `path`) without waiting: VHD_IN_USE when another open file holds a conflicting lock. */
export function lockFd(fd: number, mode: LockMode, path: string): Promise<void> {
  // flock(2) through the native addon when it is built: a syscall instead of a process.
  let taken: boolean | undefined;
  try {
    taken = nativeLock(fd, mode === 'exclusive');
  } catch (e) {
    return Promise.reject(new VmhostError('STORAGE_LOCK_FAILED', `cannot lock ${path}: ${(e as Error).message}`, { path, mode }, { cause: e }));
  }
  if (taken !== undefined) return taken ? Promise.resolve() : Promise.reject(inUse(path, mode));
  return new Promise((resolve, reject) => {
    const child = spawn('flock', [mode === 'exclusive' ? '-x' : '-s', '-n', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    child.on('error', (e) => reject(new VmhostError('STORAGE_LOCK_FAILED', `cannot lock ${path}: flock(1) from util-linux is needed (${e.message})`, { path, mode }, { cause: e })));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else if (code === CONFLICT_EXIT) reject(inUse(path, mode));
      else reject(new VmhostError('STORAGE_LOCK_FAILED', `cannot lock ${path}: flock exited ${code}: ${stderr.trim()}`, { path, mode }));
    });
  });
}

/** The refusal for a file another open holds; `holder` names it when the caller knows (a VM), else "another process". */
export function inUse(path: string, mode: LockMode, holder = 'another process'): VmhostError {
  const what = mode === 'exclusive' ? 'change' : 'open';
  return new VmhostError('VHD_IN_USE', `${path} is in use by ${holder}: cannot ${what} it`, { path, holder });
}
