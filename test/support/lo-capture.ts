// Test support: tshark capturing on the loopback interface with a capture filter, for tests that
// check what crossed `lo` (a tunnel's datagrams, a move's TLS). The capture's file is read with
// `tshark -r` by the caller's own `read` before the folder is removed.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from './daemon.ts';

/** `tshark -r FILE ARGS…`'s non-empty output lines. */
export type CaptureReader = (...args: string[]) => Promise<string[]>;

/** Starts capturing `filter` on lo; `stop` ends it and hands `use` a reader of the file, then removes it. */
export async function captureLo(filter: string): Promise<{ stop<T>(use: (read: CaptureReader, file: string) => Promise<T>): Promise<T> }> {
  const dir = await mkdtemp(join(tmpdir(), 'vmhost-lo-cap-'));
  const file = join(dir, 'lo.pcapng');
  const p = spawn('tshark', ['-i', 'lo', '-f', filter, '-w', file, '-q'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (b: Buffer) => { err += b.toString(); });
  // tshark's start-up is slow on a loaded machine; one that never gets there is killed, never left running (it would keep the test process alive).
  await waitFor('tshark capturing', 60_000, async () => err.includes('Capturing on') || (p.exitCode !== null && Promise.reject(new Error(err)))).catch(async (e: unknown) => {
    p.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw e;
  });
  return {
    async stop(use) {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGINT');
      await exited;
      const read: CaptureReader = async (...args) => (await promisify(execFile)('tshark', ['-r', file, ...args])).stdout.split('\n').filter((l) => l.trim() !== '');
      try {
        return await use(read, file);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
