// fio against both NBD servers (issue 17): 4 KiB random reads and writes (truly random offsets,
// fio's `--ioengine=nbd` through libnbd) at queue depth 32 and 1 over a fully allocated 1 GiB
// dynamic VHDX, ours against qemu-nbd, each serving its own copy of one file, alternating run by
// run; and the physical limit: fio libaio O_DIRECT on a plain 1 GiB file in the same directory.
//   node --import tsx bench/nbd-fio.ts        (REPEAT=3 runs per case, RUNTIME=6 s each, median)
//   CASES=randwrite:32 BEFORE=/work/wt-base node --import tsx bench/nbd-fio.ts    (adds our server from that checkout)
// Prints a markdown table: ours / qemu-nbd and ours / physical (> 1: ours is faster), load average.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { allocatedVhdx, exec, median, serve, stop, type Server } from './nbd-servers.ts';

const MiB = 1 << 20;
const SIZE = 1024 * MiB;
const REPEAT = Number(process.env.REPEAT ?? 3);
const RUNTIME = Number(process.env.RUNTIME ?? 6);
// The physical limit is measured in this directory: BENCH_DIR puts it on another file system.
const dir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'nbd-fio-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

/** A checkout of an older commit whose server is measured beside ours (A/B in one run). */
const BEFORE = process.env.BEFORE;
type Target = Server | 'physical' | 'before';
interface Case {
  rw: 'randread' | 'randwrite';
  depth: number;
}
/** CASES=randwrite:32,randread:1 picks cases (default: all four). */
const CASES: Case[] = [
  { rw: 'randwrite' as const, depth: 32 },
  { rw: 'randread' as const, depth: 32 },
  { rw: 'randwrite' as const, depth: 1 },
  { rw: 'randread' as const, depth: 1 },
].filter((c) => !process.env.CASES || process.env.CASES.split(',').includes(`${c.rw}:${c.depth}`));

/**
 * Write the file back and drop it from the page cache, so every server starts from the same
 * state. This matters for writes: the copy (and any large read or write) leaves the file in the
 * cache as large folios, and a 4 KiB buffered pwrite into a large folio costs the kernel ~10×
 * one into a 4 KiB page (33 µs against 3 µs of system time here, see BENCHMARKS.md). From a
 * cold cache, 4 KiB writes and reads bring the file in as 4 KiB pages, as a guest's random I/O
 * would.
 */
async function dropCache(path: string): Promise<void> {
  await exec('sync', [path]);
  await exec('dd', [`if=${path}`, 'iflag=nocache', 'count=0', 'status=none']);
}

/** IOPS of one fio job: `engine` args say where the I/O goes. */
async function fio(c: Case, engine: string[]): Promise<number> {
  const out = await exec('fio', [
    '--name=bench', `--rw=${c.rw}`, '--bs=4k', `--iodepth=${c.depth}`, `--size=${SIZE}`,
    `--runtime=${RUNTIME}`, '--time_based', '--ramp_time=1', '--output-format=json', ...engine,
  ]);
  const job = (JSON.parse(out.slice(out.indexOf('{'))) as { jobs: Array<Record<'read' | 'write', { iops: number }>> }).jobs[0]!;
  return c.rw === 'randread' ? job.read.iops : job.write.iops;
}

/** Run order of one round (reversed every other round). */
const targets: Target[] = BEFORE ? ['before', 'ours', 'qemu-nbd', 'physical'] : ['ours', 'qemu-nbd', 'physical'];

async function runOnce(t: Target, c: Case, files: Record<Target, string>): Promise<number> {
  if (t === 'physical') return fio(c, ['--ioengine=libaio', '--direct=1', `--filename=${files.physical}`]);
  const s = t === 'before' ? await serve('ours', files.before, 'vhdx', dir, BEFORE) : await serve(t, files[t], 'vhdx', dir);
  try {
    return await fio(c, ['--ioengine=nbd', `--uri=${s.uri}`]);
  } finally {
    await stop(s.child);
  }
}

async function main(): Promise<void> {
  console.log(`fio ${(await exec('fio', ['--version'])).trim()}; block server vs ${(await exec('qemu-nbd', ['--version'])).split('\n')[0]}; median of ${REPEAT} × ${RUNTIME} s, alternating; ${dir}`);
  const orig = join(dir, 'orig.vhdx');
  await allocatedVhdx(orig, SIZE);
  const files: Record<Target, string> = { ours: join(dir, 'ours.vhdx'), 'qemu-nbd': join(dir, 'q.vhdx'), physical: join(dir, 'plain.img'), before: join(dir, 'before.vhdx') };
  for (const t of targets.filter((x) => x !== 'physical')) {
    copyFileSync(orig, files[t]);
    await dropCache(files[t]);
  }
  await exec('fio', ['--name=fill', '--rw=write', '--bs=1M', `--size=${SIZE}`, '--ioengine=libaio', '--direct=1', `--filename=${files.physical}`]);
  const rows: string[] = [];
  for (const c of CASES) {
    const iops: Record<Target, number[]> = { ours: [], 'qemu-nbd': [], physical: [], before: [] };
    const load: number[] = [];
    for (let i = 0; i < REPEAT; i++) {
      for (const t of i % 2 ? [...targets].reverse() : targets) {
        load.push(loadavg()[0]!);
        iops[t].push(await runOnce(t, c, files));
      }
    }
    const [ours, theirs, phys] = [median(iops.ours), median(iops['qemu-nbd']), median(iops.physical)];
    const k = (x: number) => `${(x / 1000).toFixed(1)} k`;
    const before = BEFORE ? ` ${k(median(iops.before))} | ${(median(iops.before) / theirs).toFixed(2)} |` : '';
    const row = `| 4 KiB ${c.rw}, QD${c.depth} |${before} ${k(ours)} | ${k(theirs)} | ${k(phys)} | ${(ours / theirs).toFixed(2)} | ${(ours / phys).toFixed(2)} | ${Math.min(...load).toFixed(1)}–${Math.max(...load).toFixed(1)} |`;
    rows.push(row);
    const runs = targets.map((t) => `${t} ${iops[t].map((x) => (x / 1000).toFixed(1)).join(' ')}`).join('; ');
    console.log(row, `${runs} (k IOPS)`);
  }
  const head = BEFORE ? ' before | before / qemu-nbd |' : '';
  console.log(`\n| case (fio, 1 GiB) |${head} ours | qemu-nbd | physical (O_DIRECT) | ours / qemu-nbd | ours / physical | load average |\n|---|${BEFORE ? '---|---|' : ''}---|---|---|---|---|---|`);
  for (const r of rows) console.log(r);
}

await main();
