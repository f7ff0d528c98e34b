// What change tracking (issue 13) costs on the write path: fio 4 KiB random writes at QD32
// (fio's nbd engine) against our block server serving a fully allocated 1 GiB dynamic VHDX,
// without and with the change-tracking stage (test-serve.ts --track: consumer registered and
// its first full take committed, so the run starts with nothing dirty and every 64 KiB block
// the writes reach for the first time costs a journal append made durable, batched: the worst
// case, just after a backup's take), and 'tracked-warm': the same tracker file after one
// sequential pass of 1 MiB writes over the whole disk (untimed), so every block is already
// dirty — the steady state between two backups, where a write costs a bitmap test. Alternating
// runs on one file, median IOPS, and the server's CPU time per write (less sensitive to load).
//   node --import tsx bench/change-tracking.ts      (REPEAT=3 runs per variant, RUNTIME=6 s each)
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { allocatedVhdx, cpuOf, exec, median, serve, stop } from './nbd-servers.ts';

const MiB = 1 << 20;
const SIZE = 1024 * MiB;
const REPEAT = Number(process.env.REPEAT ?? 3);
const RUNTIME = Number(process.env.RUNTIME ?? 6);
const dir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'cbt-bench-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

type Variant = 'plain' | 'tracked' | 'tracked-warm';
const VARIANTS: Variant[] = ['plain', 'tracked', 'tracked-warm'];

async function runOnce(v: Variant, disk: string, round: number): Promise<{ iops: number; cpuUsPerWrite: number }> {
  // A fresh tracker file per run: every run starts with no block dirty (the worst start).
  // tracked-warm runs right after tracked on its file, every block made dirty first.
  const cbt = join(dir, `t${round}.cbt`);
  const s = await serve('ours', disk, 'vhdx', dir, undefined, v === 'plain' ? [] : ['--track', cbt]);
  try {
    // The stage is in before the socket listens; a first open then registers the consumer and commits its full take (the last record).
    while (v === 'tracked' && !(existsSync(cbt) && readFileSync(cbt, 'utf8').includes('{"k":"crash"}'))) await new Promise((r) => setTimeout(r, 20));
    if (v === 'tracked-warm') {
      await exec('fio', ['--name=dirty', '--rw=write', '--bs=1M', '--iodepth=8', `--size=${SIZE}`, '--ioengine=nbd', `--uri=${s.uri}`]);
    }
    const c0 = cpuOf(s.child.pid!);
    const out = await exec('fio', ['--name=bench', '--rw=randwrite', '--bs=4k', '--iodepth=32', `--size=${SIZE}`,
      `--runtime=${RUNTIME}`, '--time_based', '--output-format=json', '--ioengine=nbd', `--uri=${s.uri}`]);
    const cpu = cpuOf(s.child.pid!) - c0;
    const job = (JSON.parse(out.slice(out.indexOf('{'))) as { jobs: Array<{ write: { iops: number; total_ios: number } }> }).jobs[0]!;
    return { iops: job.write.iops, cpuUsPerWrite: (cpu * 1e6) / job.write.total_ios };
  } finally {
    await stop(s.child);
  }
}

const disk = join(dir, 'd.vhdx');
await allocatedVhdx(join(dir, 'orig.vhdx'), SIZE);
copyFileSync(join(dir, 'orig.vhdx'), disk);
console.log(`fio ${(await exec('fio', ['--version'])).trim()}: 4 KiB randwrite QD32 on a 1 GiB allocated VHDX, median of ${REPEAT} × ${RUNTIME} s, alternating`);
const res: Record<Variant, Array<{ iops: number; cpuUsPerWrite: number }>> = { plain: [], tracked: [], 'tracked-warm': [] };
const load: number[] = [];
for (let i = 0; i < REPEAT; i++) {
  for (const v of (i % 2 ? ['tracked', 'tracked-warm', 'plain'] : ['plain', 'tracked', 'tracked-warm']) as Variant[]) {
    load.push(loadavg()[0]!);
    const r = await runOnce(v, disk, i);
    res[v].push(r);
    console.log(`${v}: ${(r.iops / 1000).toFixed(1)} k IOPS, ${r.cpuUsPerWrite.toFixed(1)} µs server CPU per write`);
  }
}
const m = (v: Variant, k: 'iops' | 'cpuUsPerWrite') => median(res[v].map((r) => r[k]));
console.log(`\n| variant | IOPS (median) | server CPU µs / write (median) |\n|---|---|---|`);
for (const v of VARIANTS) console.log(`| ${v} | ${(m(v, 'iops') / 1000).toFixed(1)} k | ${m(v, 'cpuUsPerWrite').toFixed(1)} |`);
for (const v of ['tracked', 'tracked-warm'] as const) {
  console.log(`${v} / plain IOPS: ${(m(v, 'iops') / m('plain', 'iops')).toFixed(3)}; CPU per write ${(m(v, 'cpuUsPerWrite') - m('plain', 'cpuUsPerWrite')).toFixed(1)} µs more`);
}
console.log(`load average ${Math.min(...load).toFixed(1)}–${Math.max(...load).toFixed(1)}`);
