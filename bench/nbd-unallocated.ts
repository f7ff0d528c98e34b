// Reads of unallocated space over NBD (issue 17): sequential 4 KiB reads at queue depth 32 by
// `qemu-img bench` over the unallocated blocks of a 1 GiB dynamic VHDX and over the holes of a
// 1 GiB sparse raw, ours against qemu-nbd, each serving its own copy of one file. Ours answers
// them with OFFSET_HOLE chunks (qemu's client negotiates structured replies), never reading.
//   node --import tsx bench/nbd-unallocated.ts            (REPEAT=5 runs per case, median)
// Prints a markdown table with ours / qemu-nbd ratios (> 1: ours is faster) and the load.
import { copyFileSync, mkdtempSync, openSync, ftruncateSync, closeSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeFile } from '../src/blockio/index.ts';
import { createVhdx } from '../src/vhd/index.ts';
import { benchOnce, exec, median, type Server } from './nbd-servers.ts';

const MiB = 1 << 20;
const SIZE = 1024 * MiB;
const COUNT = 20000;
const REPEAT = Number(process.env.REPEAT ?? 5);
const dir = mkdtempSync(join(tmpdir(), 'nbd-unalloc-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

async function main(): Promise<void> {
  console.log(`unallocated reads: block server vs ${(await exec('qemu-nbd', ['--version'])).split('\n')[0]}; median of ${REPEAT}, alternating`);
  const f = await NodeFile.open(join(dir, 'orig.vhdx'), { create: true });
  await createVhdx(f, { type: 'Dynamic', virtualSize: SIZE });
  await f.close();
  const fd = openSync(join(dir, 'orig.img'), 'w');
  ftruncateSync(fd, SIZE);
  closeSync(fd);
  const rows: string[] = [];
  for (const format of ['vhdx', 'raw'] as const) {
    const copy = { ours: join(dir, `ours.${format}`), 'qemu-nbd': join(dir, `q.${format}`) };
    for (const c of Object.values(copy)) copyFileSync(join(dir, `orig.${format === 'vhdx' ? 'vhdx' : 'img'}`), c);
    for (const offset of ['0', '300M']) {
      const args = ['-s', '4096', '-d', '32', '-o', offset];
      const t: Record<Server, number[]> = { ours: [], 'qemu-nbd': [] };
      const load: number[] = [];
      for (let i = 0; i < REPEAT; i++) {
        for (const w of (i % 2 ? ['qemu-nbd', 'ours'] : ['ours', 'qemu-nbd']) as Server[]) {
          load.push(loadavg()[0]!);
          t[w].push(await benchOnce(w, copy[w], format, dir, args, COUNT));
        }
      }
      const ours = COUNT / median(t.ours), theirs = COUNT / median(t['qemu-nbd']);
      const row = `| ${format === 'vhdx' ? '1 GiB dynamic VHDX, unallocated' : '1 GiB sparse raw, holes'}, -o ${offset} | ${ours.toFixed(0)} IOPS | ${theirs.toFixed(0)} IOPS | ${(ours / theirs).toFixed(2)} | ${Math.min(...load).toFixed(1)}–${Math.max(...load).toFixed(1)} |`;
      rows.push(row);
      console.log(row, `ours ${t.ours.join(' ')} s; qemu-nbd ${t['qemu-nbd'].join(' ')} s`);
    }
  }
  console.log(`\n| case (4 KiB sequential reads, QD32, ${COUNT}) | ours | qemu-nbd | ours / qemu-nbd | load average |\n|---|---|---|---|---|`);
  for (const r of rows) console.log(r);
}

await main();
