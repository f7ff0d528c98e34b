// Shared by the NBD benches: our block server (src/storage/test-serve.ts, its own process like
// qemu-nbd) and qemu-nbd serving one disk file over a unix socket, and `qemu-img bench` run
// (or fio's nbd engine) against either through an nbd+unix:// URL. Children are killed when the bench process exits.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NodeFile } from '../src/blockio/index.ts';
import { createVhdx, openVhdx } from '../src/vhd/index.ts';

export type Server = 'ours' | 'qemu-nbd';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

export function exec(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 300_000 }, (e, out, err) => (e ? reject(new Error(`${cmd} ${args.join(' ')}: ${err || e.message}`)) : resolve(String(out))));
  });
}

function track(c: ChildProcess): ChildProcess {
  children.add(c);
  c.on('exit', () => children.delete(c));
  return c;
}

async function waitSocket(path: string, c: ChildProcess): Promise<void> {
  for (let i = 0; i < 400 && !existsSync(path); i++) {
    if (c.exitCode !== null) throw new Error('server exited before listening');
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const gone = new Promise<void>((r) => c.once('exit', () => r()));
  c.kill('SIGTERM');
  await gone;
}

/**
 * Serve `disk` (qemu-nbd: as `format`) from `dir`'s sockets; ours detects the format itself.
 * `tree`: the checkout whose server runs as ours (an A/B against an older commit); `extra`:
 * more arguments for ours (test-serve.ts's --track).
 */
export async function serve(which: Server, disk: string, format: string, dir: string, tree = root, extra: string[] = []): Promise<{ child: ChildProcess; uri: string }> {
  const name = which === 'ours' ? 'ours' : 'q';
  const sock = join(dir, which === 'ours' ? 'ours.sock' : 'qemu-nbd.sock');
  const child = which === 'ours'
    ? track(spawn(process.execPath, ['--import', 'tsx', 'src/storage/test-serve.ts', disk, dir, name, ...extra], { stdio: ['ignore', 'ignore', 'inherit'], cwd: tree }))
    : track(spawn('qemu-nbd', ['-t', '-f', format, '-x', name, '-k', sock, disk], { stdio: ['ignore', 'ignore', 'inherit'] }));
  await waitSocket(sock, child);
  return { child, uri: `nbd+unix:///${name}?socket=${sock}` };
}

/** CPU seconds (user + system) a running process has used so far, from /proc. */
export function cpuOf(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks of 1/100 s
}

/**
 * `qemu-img bench <args> -c count` against `which` serving `disk` (from checkout `tree`): its
 * seconds, and the CPU seconds the server used during it (start-up excluded).
 */
export async function benchRun(which: Server, disk: string, format: string, dir: string, args: string[], count: number, tree = root): Promise<{ seconds: number; serverCpu: number }> {
  const s = await serve(which, disk, format, dir, tree);
  try {
    const c0 = cpuOf(s.child.pid!);
    const out = await exec('qemu-img', ['bench', '-f', 'raw', '-t', 'none', ...args, '-c', String(count), s.uri]);
    const serverCpu = cpuOf(s.child.pid!) - c0;
    const m = /Run completed in ([\d.]+) seconds/.exec(out);
    if (!m) throw new Error(`no timing in: ${out}`);
    return { seconds: Number(m[1]), serverCpu };
  } finally {
    await stop(s.child);
  }
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** A dynamic VHDX of `size` bytes with every block written (non-zero data): writes overwrite, reads read. */
export async function allocatedVhdx(path: string, size: number): Promise<void> {
  const f = await NodeFile.open(path, { create: true, overwrite: true });
  await createVhdx(f, { type: 'Dynamic', virtualSize: size });
  const d = await openVhdx(f);
  const b = new Uint8Array(4 << 20);
  for (let i = 0; i < b.length; i++) b[i] = (i * 131 + 7) & 0xff;
  for (let o = 0; o < size; o += b.length) await d.write(b, o);
  await d.close();
}
