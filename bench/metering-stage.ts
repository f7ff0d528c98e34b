// Micro-benchmark: what the storage metering stage (counters, the 1 s IOPS ring and the latency
// histogram /metrics and Measure-VM read) costs per request, against a pass-through stage in
// the same run (the peer: the same promise chain without the bookkeeping). The disk below is a
// resolved promise, so the numbers are the stage's own cost, not I/O.
// Run: node --import tsx bench/metering-stage.ts [seconds per variant, default 2]
// The stage class is the block server's internals, deliberately kept out of storage's index.
import { MeteringStage } from '../src/storage/metering.ts';
import type { IoRequest, IoResult, Next, Stage } from '../src/storage/index.ts';

const seconds = Number(process.argv[2] ?? 2);
const done: Next = () => Promise.resolve({} as IoResult);
const reqs: IoRequest[] = [4096, 65536, 8192, 1048576].map((length, i) => ({
  kind: i % 2 ? 'write' : 'read', offset: i * 1048576, length, fua: false, noHole: false, exportName: 'bench',
}));
const passThrough: Stage = { name: 'pass', handle: (r, next) => next(r).then((x) => x, (e: unknown) => { throw e; }) };

async function run(name: string, stage: Stage): Promise<number> {
  for (let i = 0; i < 100_000; i++) await stage.handle(reqs[i & 3]!, done); // warm-up
  let count = 0;
  const t0 = process.hrtime.bigint();
  const deadline = t0 + BigInt(Math.round(seconds * 1e9));
  let now = t0;
  while (now < deadline) {
    for (let i = 0; i < 50_000; i++) await stage.handle(reqs[i & 3]!, done);
    count += 50_000;
    now = process.hrtime.bigint();
  }
  const ns = Number(now - t0) / count;
  console.log(`${name.padEnd(18)} ${(1e3 / ns).toFixed(2).padStart(6)} M requests/s  ${ns.toFixed(1).padStart(6)} ns/request`);
  return ns;
}

const meter = new MeteringStage();
const rounds: { pass: number; meter: number }[] = [];
for (let round = 0; round < 3; round++) rounds.push({ pass: await run('pass-through', passThrough), meter: await run('metering', meter) });
const best = (k: 'pass' | 'meter') => Math.min(...rounds.map((r) => r[k]));
console.log(`metering / pass-through: ${(best('meter') / best('pass')).toFixed(2)}× the time per request (+${(best('meter') - best('pass')).toFixed(0)} ns), best of 3 rounds`);
console.log(`histogram check: ${meter.counters().latencyBuckets.at(-1)} of ${meter.counters().latencyCount} read/write requests ≤ ${2500} ms`);
