// fio against both NBD servers (issue 17): 4 KiB random reads and writes (truly random offsets,
// fio's `--ioengine=nbd` through libnbd) at queue depth 32 and 1 over a fully allocated 1 GiB
// dynamic VHDX, ours against qemu-nbd, each serving its own copy of one file, alternating run by
// run; and the physical limit: fio libaio O_DIRECT on a plain 1 GiB file in the same directory.
//   node --import tsx bench/nbd-fio.ts        (REPEAT=3 runs per case, RUNTIME=6 s each, median)
//   CASES=randwrite:32 BEFORE=/work/wt-base node --import tsx bench/nbd-fio.ts    (adds our server from that checkout)
//   CACHE=cold …   (the served copies start out of the page cache; default: cached in 4 KiB pages)
// Prints a markdown table: ours / qemu-nbd and ours / physical (> 1: ours is faster), load average.
import { copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { allocatedVhdx, exec, median, serve, stop, type Server } from './nbd-servers.ts';

const MiB = 1 << 20;
const SIZE = 1024 * MiB;
const REPEAT = Number(process.env.REPEAT ?? 3);
const RUNTIME = Number(process.env.RUNTIME ?? 6);
const CACHE = process.env.CACHE === 'cold' ? 'cold' : 'warm';
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
 * Every server starts from the same page-cache state of its copy. The copy (like any large read
 * or write) leaves the file cached as large folios, and a 4 KiB buffered pwrite into a large
 * folio costs the kernel ~10× one into a 4 KiB page (BENCHMARKS.md), so the copy is written
 * back and dropped; CACHE=warm (default) then reads it back in 4 KiB pages (readahead off, 8
 * readers), as a guest's random I/O leaves it; CACHE=cold leaves it out of the cache.
 */
async function settleCache(path: string): Promise<void> {
  await exec('sync', [path]);
  await exec('dd', [`if=${path}`, 'iflag=nocache', 'count=0', 'status=none']);
  if (CACHE === 'cold') return;
  // Within the file (fio lays out, i.e. rewrites, a file shorter than a job's range); --readonly
  // on top. The last < 32 KiB stay out of the cache.
  const part = Math.floor(statSync(path).size / 8 / 4096) * 4096;
  await exec('fio', [
    '--name=warm', `--filename=${path}`, '--readonly', '--rw=read', '--bs=4k', '--ioengine=psync', '--numjobs=8',
    `--size=${part}`, `--offset_increment=${part}`, '--fadvise_hint=random', '--output-format=terse',
  ]);
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
  console.log(`fio ${(await exec('fio', ['--version'])).trim()}; block server vs ${(await exec('qemu-nbd', ['--version'])).split('\n')[0]}; median of ${REPEAT} × ${RUNTIME} s, alternating; ${CACHE} cache; ${dir}`);
  const orig = join(dir, 'orig.vhdx');
  await allocatedVhdx(orig, SIZE);
  const files: Record<Target, string> = { ours: join(dir, 'ours.vhdx'), 'qemu-nbd': join(dir, 'q.vhdx'), physical: join(dir, 'plain.img'), before: join(dir, 'before.vhdx') };
  for (const t of targets.filter((x) => x !== 'physical')) {
    copyFileSync(orig, files[t]);
    await settleCache(files[t]);
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
