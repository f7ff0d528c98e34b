// Reads of unallocated space over NBD (issue 17): sequential 4 KiB reads at queue depth 32 by
// `qemu-img bench` over the unallocated blocks of a 1 GiB dynamic VHDX and over the holes of a
// 1 GiB sparse raw, ours against qemu-nbd, each serving its own copy of one file. Ours answers
// them with OFFSET_HOLE chunks (qemu's client negotiates structured replies), never reading.
// Besides the time, each run's server CPU (during the run, from /proc) per request: stabler than
// the time on a loaded machine. BEFORE=<checkout> adds our server from that checkout (e.g. a
// worktree of main) to the same alternation, for before/after under the same load.
//   node --import tsx bench/nbd-unallocated.ts            (REPEAT=5 runs per case, median; COUNT=20000)
//   REPEAT=3 BEFORE=/work/wt-base node --import tsx bench/nbd-unallocated.ts
// Prints a markdown table with ours / qemu-nbd ratios (> 1: ours is faster) and the load.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, openSync, ftruncateSync, closeSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeFile } from '../src/blockio/index.ts';
import { createVhdx } from '../src/vhd/index.ts';
import { benchRun, exec, median, type Server } from './nbd-servers.ts';

const MiB = 1 << 20;
const SIZE = 1024 * MiB;
const COUNT = Number(process.env.COUNT ?? 20000);
const REPEAT = Number(process.env.REPEAT ?? 5);
const BEFORE = process.env.BEFORE;
const dir = mkdtempSync(join(tmpdir(), 'nbd-unalloc-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

/** One server in the alternation: ours, ours from BEFORE's checkout, qemu-nbd. */
interface Contender { label: string; server: Server; tree?: string }
const contenders: Contender[] = [
  { label: 'ours', server: 'ours' },
  ...(BEFORE ? [{ label: 'before', server: 'ours' as const, tree: BEFORE }] : []),
  { label: 'qemu-nbd', server: 'qemu-nbd' },
];
const uptime = () => execFileSync('uptime', { encoding: 'utf8' }).trim();

async function main(): Promise<void> {
  console.log(`unallocated reads: block server${BEFORE ? ` (and ${BEFORE}'s)` : ''} vs ${(await exec('qemu-nbd', ['--version'])).split('\n')[0]}; median of ${REPEAT}, alternating`);
  console.log(`start: ${uptime()}`);
  const f = await NodeFile.open(join(dir, 'orig.vhdx'), { create: true });
  await createVhdx(f, { type: 'Dynamic', virtualSize: SIZE });
  await f.close();
  const rows: string[] = [];
  for (const format of ['vhdx', 'raw'] as const) {
    const copies = contenders.map((c) => join(dir, `${c.label}.${format}`));
    // A raw image is made a hole by truncation for each server: a file copy (copy_file_range
    // on ext4) would write its holes out as zeros, and the reads would be of data.
    for (const c of copies) {
      if (format === 'vhdx') copyFileSync(join(dir, 'orig.vhdx'), c);
      else {
        const fd = openSync(c, 'w');
        ftruncateSync(fd, SIZE);
        closeSync(fd);
      }
    }
    for (const offset of ['0', '300M']) {
      const args = ['-s', '4096', '-d', '32', '-o', offset];
      const t = contenders.map(() => ({ s: [] as number[], cpu: [] as number[] }));
      const load: number[] = [];
      for (let i = 0; i < REPEAT; i++) {
        const order = contenders.map((_, k) => k);
        for (const k of i % 2 ? order.reverse() : order) {
          load.push(loadavg()[0]!);
          const r = await benchRun(contenders[k]!.server, copies[k]!, format, dir, args, COUNT, contenders[k]!.tree);
          t[k]!.s.push(r.seconds);
          t[k]!.cpu.push(r.serverCpu);
        }
      }
      const iops = t.map((x) => COUNT / median(x.s));
      const cpuUs = t.map((x) => (median(x.cpu) / COUNT) * 1e6);
      const q = contenders.length - 1;
      const cells = contenders.map((_, k) => `${iops[k]!.toFixed(0)} IOPS, ${cpuUs[k]!.toFixed(1)} µs CPU`);
      const ratios = contenders.slice(0, q).map((_, k) => (iops[k]! / iops[q]!).toFixed(2));
      const row = `| ${format === 'vhdx' ? '1 GiB dynamic VHDX, unallocated' : '1 GiB sparse raw, holes'}, -o ${offset} | ${cells.join(' | ')} | ${ratios.join(' | ')} | ${Math.min(...load).toFixed(1)}–${Math.max(...load).toFixed(1)} |`;
      rows.push(row);
      console.log(row, contenders.map((c, k) => `${c.label} ${t[k]!.s.join(' ')} s`).join('; '));
    }
  }
  const q = contenders[contenders.length - 1]!.label;
  const heads = contenders.map((c) => `${c.label} (server CPU per read)`);
  const rheads = contenders.slice(0, -1).map((c) => `${c.label} / ${q}`);
  console.log(`\n| case (4 KiB sequential reads, QD32, ${COUNT}) | ${heads.join(' | ')} | ${rheads.join(' | ')} | load average |\n|${'---|'.repeat(heads.length + rheads.length + 2)}`);
  for (const r of rows) console.log(r);
  console.log(`end: ${uptime()}`);
}

await main();
