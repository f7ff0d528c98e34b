// Block server throughput against qemu-nbd, both serving the same dynamic VHDX over a unix
// socket, measured by qemu-img bench on an nbd+unix:// URL (DESIGN §8).
//   node --import tsx bench/nbd-vs-qemu-nbd.ts            (REPEAT=3 runs per case, median)
// Cases: 4 KiB reads/writes at queue depth 1 and 32 (qemu-img bench has no random mode:
// a 1 MiB + 4 KiB stride scatters the offsets over the whole disk), 1 MiB sequential
// reads/writes at depth 4. The disk is fully allocated first, so writes overwrite.
// Prints a markdown table with ours / qemu-nbd ratios (> 1: ours is faster).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allocatedVhdx, benchOnce, exec, median, type Server } from './nbd-servers.ts';

const MiB = 1 << 20;
const SIZE = 256 * MiB;
const REPEAT = Number(process.env.REPEAT ?? 3);
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

const runCase = (which: Server, c: Case) => benchOnce(which, disk, 'vhdx', dir, c.args, c.count);

async function main(): Promise<void> {
  console.log(`block server vs qemu-nbd ${(await exec('qemu-nbd', ['--version'])).split('\n')[0]}; dynamic VHDX ${SIZE / MiB} MiB, fully allocated; median of ${REPEAT}`);
  await allocatedVhdx(disk, SIZE);
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
