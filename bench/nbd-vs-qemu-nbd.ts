// Block server throughput against qemu-nbd, both serving the same dynamic VHDX over a unix
// socket, measured by qemu-img bench on an nbd+unix:// URL (DESIGN §8).
//   node --import tsx bench/nbd-vs-qemu-nbd.ts            (REPEAT=3 runs per case, median)
//   BEFORE=/work/wt-base node --import tsx bench/nbd-vs-qemu-nbd.ts   (adds that checkout's server to the alternation)
// Cases: 4 KiB reads/writes at queue depth 1 and 32 (qemu-img bench has no random mode:
// a 1 MiB + 4 KiB stride scatters the offsets over the whole disk), 1 MiB sequential
// reads/writes at depth 4. The disk is fully allocated first, so writes overwrite.
// Prints a markdown table with ours / qemu-nbd ratios (> 1: ours is faster), each server's CPU
// per request during the run (user + system, /proc: steadier than the time on a loaded
// machine) and the load average.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { allocatedVhdx, benchRun, exec, median, type Server } from './nbd-servers.ts';

const MiB = 1 << 20;
const SIZE = 256 * MiB;
const REPEAT = Number(process.env.REPEAT ?? 3);
const BEFORE = process.env.BEFORE;
const dir = mkdtempSync(join(tmpdir(), 'nbd-bench-'));
const disk = join(dir, 'bench.vhdx');

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

process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

/** One server in the alternation: ours, ours from BEFORE's checkout, qemu-nbd (last). */
interface Contender { label: string; server: Server; tree?: string }
const contenders: Contender[] = [
  { label: 'ours', server: 'ours' },
  ...(BEFORE ? [{ label: 'before', server: 'ours' as const, tree: BEFORE }] : []),
  { label: 'qemu-nbd', server: 'qemu-nbd' },
];

async function main(): Promise<void> {
  console.log(`block server${BEFORE ? ` (and ${BEFORE}'s)` : ''} vs qemu-nbd ${(await exec('qemu-nbd', ['--version'])).split('\n')[0]}; dynamic VHDX ${SIZE / MiB} MiB, fully allocated; median of ${REPEAT}, alternating`);
  await allocatedVhdx(disk, SIZE);
  const rows: string[] = [];
  const q = contenders.length - 1;
  for (const c of CASES) {
    const t = contenders.map(() => ({ s: [] as number[], cpu: [] as number[] }));
    const load: number[] = [];
    for (let i = 0; i < REPEAT; i++) {
      const order = contenders.map((_, k) => k);
      for (const k of i % 2 ? order.reverse() : order) {
        load.push(loadavg()[0]!);
        const r = await benchRun(contenders[k]!.server, disk, 'vhdx', dir, c.args, c.count, contenders[k]!.tree);
        t[k]!.s.push(r.seconds);
        t[k]!.cpu.push(r.serverCpu);
      }
    }
    const rate = (s: number) => (c.bytes >= MiB ? (c.count * c.bytes) / MiB / s : c.count / s);
    const unit = c.bytes >= MiB ? 'MiB/s' : 'IOPS';
    const rates = t.map((x) => rate(median(x.s)));
    const cells = t.map((x, k) => `${rates[k]!.toFixed(0)} ${unit}, ${((median(x.cpu) / c.count) * 1e6).toFixed(1)} µs CPU`);
    const ratios = contenders.slice(0, q).map((_, k) => (rates[k]! / rates[q]!).toFixed(2));
    const row = `| ${c.name} | ${cells.join(' | ')} | ${ratios.join(' | ')} | ${Math.min(...load).toFixed(1)}–${Math.max(...load).toFixed(1)} |`;
    rows.push(row);
    console.log(row);
  }
  const heads = contenders.map((c) => `${c.label} (server CPU per request)`);
  const rheads = contenders.slice(0, q).map((c) => `${c.label} / qemu-nbd`);
  console.log(`\n| case | ${heads.join(' | ')} | ${rheads.join(' | ')} | load average |\n|${'---|'.repeat(heads.length + rheads.length + 2)}`);
  for (const r of rows) console.log(r);
}

await main();
