// Block server throughput against qemu-nbd, both serving the same dynamic VHDX over a unix
// socket, measured by qemu-img bench on an nbd+unix:// URL (DESIGN §8).
//   node --import tsx bench/nbd-vs-qemu-nbd.ts            (REPEAT=3 runs per case, median)
// Cases: 4 KiB reads/writes at queue depth 1 and 32 (qemu-img bench has no random mode:
// a 1 MiB + 4 KiB stride scatters the offsets over the whole disk), 1 MiB sequential
// reads/writes at depth 4. The disk is fully allocated first, so writes overwrite.
// Prints a markdown table with ours / qemu-nbd ratios (> 1: ours is faster).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NodeFile } from '../src/blockio/index.ts';
import { createVhdx, openVhdx } from '../src/vhd/index.ts';

const MiB = 1 << 20;
const SIZE = 256 * MiB;
const REPEAT = Number(process.env.REPEAT ?? 3);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = mkdtempSync(join(tmpdir(), 'nbd-bench-'));
const disk = join(dir, 'bench.vhdx');
const children = new Set<ChildProcess>();

interface Case {
  name: string;
  args: string[];
  count: number;
  bytes: number;
}
const STRIDE = String(MiB + 4096);
const CASES: Case[] = [
  { name: '4 KiB read, QD1', args: ['-s', '4k', '-S', STRIDE, '-d', '1'], count: 20000, bytes: 4096 },
  { name: '4 KiB read, QD32', args: ['-s', '4k', '-S', STRIDE, '-d', '32'], count: 60000, bytes: 4096 },
  { name: '4 KiB write, QD1', args: ['-w', '-s', '4k', '-S', STRIDE, '-d', '1'], count: 20000, bytes: 4096 },
  { name: '4 KiB write, QD32', args: ['-w', '-s', '4k', '-S', STRIDE, '-d', '32'], count: 60000, bytes: 4096 },
  { name: '1 MiB seq read, QD4', args: ['-s', '1M', '-d', '4'], count: 2000, bytes: MiB },
  { name: '1 MiB seq write, QD4', args: ['-w', '-s', '1M', '-d', '4'], count: 1000, bytes: MiB },
];

function cleanup(): void {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

function exec(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 300_000 }, (e, out, err) => (e ? reject(new Error(`${cmd} ${args.join(' ')}: ${err || e.message}`)) : resolve(String(out))));
  });
}

async function prefill(): Promise<void> {
  const f = await NodeFile.open(disk, { create: true, overwrite: true });
  await createVhdx(f, { type: 'Dynamic', virtualSize: SIZE });
  const d = await openVhdx(f);
  const b = new Uint8Array(4 * MiB);
  for (let i = 0; i < b.length; i++) b[i] = (i * 131 + 7) & 0xff;
  for (let o = 0; o < SIZE; o += b.length) await d.write(b, o);
  await d.close();
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

async function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const gone = new Promise<void>((r) => c.once('exit', () => r()));
  c.kill('SIGTERM');
  await gone;
}

type Server = 'ours' | 'qemu-nbd';

/** Start a server on the disk; ours runs in its own process like qemu-nbd. */
async function serve(which: Server): Promise<{ child: ChildProcess; uri: string }> {
  const name = which === 'ours' ? 'ours' : 'q';
  const sock = join(dir, which === 'ours' ? 'ours.sock' : 'qemu-nbd.sock');
  const child = which === 'ours'
    ? track(spawn(process.execPath, ['--import', 'tsx', 'src/storage/test-serve.ts', disk, dir, name], { stdio: ['ignore', 'ignore', 'inherit'], cwd: root }))
    : track(spawn('qemu-nbd', ['-t', '-f', 'vhdx', '-x', name, '-k', sock, disk], { stdio: ['ignore', 'ignore', 'inherit'] }));
  await waitSocket(sock, child);
  return { child, uri: `nbd+unix:///${name}?socket=${sock}` };
}

async function runCase(which: Server, c: Case): Promise<number> {
  const s = await serve(which);
  try {
    const out = await exec('qemu-img', ['bench', '-f', 'raw', '-t', 'none', ...c.args, '-c', String(c.count), s.uri]);
    const m = /Run completed in ([\d.]+) seconds/.exec(out);
    if (!m) throw new Error(`no timing in: ${out}`);
    return Number(m[1]);
  } finally {
    await stop(s.child);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  console.log(`block server vs qemu-nbd ${(await exec('qemu-nbd', ['--version'])).split('\n')[0]}; dynamic VHDX ${SIZE / MiB} MiB, fully allocated; median of ${REPEAT}`);
  await prefill();
  const rows: string[] = [];
  for (const c of CASES) {
    const t: Record<Server, number[]> = { ours: [], 'qemu-nbd': [] };
    for (let i = 0; i < REPEAT; i++) {
      const order: Server[] = i % 2 ? ['qemu-nbd', 'ours'] : ['ours', 'qemu-nbd'];
      for (const w of order) t[w].push(await runCase(w, c));
    }
    const rate = (s: number) => (c.bytes >= MiB ? (c.count * c.bytes) / MiB / s : c.count / s);
    const unit = c.bytes >= MiB ? 'MiB/s' : 'IOPS';
    const ours = rate(median(t.ours));
    const theirs = rate(median(t['qemu-nbd']));
    const row = `| ${c.name} | ${ours.toFixed(0)} ${unit} | ${theirs.toFixed(0)} ${unit} | ${(ours / theirs).toFixed(2)} |`;
    rows.push(row);
    console.log(row);
  }
  console.log('\n| case | ours | qemu-nbd | ours / qemu-nbd |\n|---|---|---|---|');
  for (const r of rows) console.log(r);
}

await main();
