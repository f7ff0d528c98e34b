// Conversion throughput: a 2 GiB raw image (16 × 64 MiB deterministic random data, each
// followed by 64 MiB of written zeros) converted raw → dynamic VHDX and VHDX → raw, with our
// engine (convertDisk in this process) and with `qemu-img convert` on the same files. Both
// use 32 MiB blocks; ours and qemu-img alternate run by run, median of 5 each. The page cache
// is warm (the source is read once first; every run reads it again from cache) and dirty pages
// of earlier runs are synced away, untimed, before each run. Prints each run's time, CPU
// seconds (all threads, kernel included; for qemu-img its process's) and the load average
// beside it, then the ratio of the medians ours/qemu (< 1: ours faster), once without any
// fsync (qemu-img's default) and once with one fsync of the output. VMHOST_NO_NATIVE_COPY=1
// measures ours without the in-kernel copies (blockio/file-copy.ts).
//   node --import tsx bench/vhd-convert.ts [--size-mib 2048] [--runs 5] [--dir /var/tmp]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, writeSync, closeSync, rmSync, statSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { NodeFile, nativeCopyStatus } from '../src/blockio/index.ts';
import { RawDisk } from '../src/storage/index.ts';
import { convertDisk, openVhdx } from '../src/vhd/index.ts';

const MiB = 1024 * 1024;
const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
const sizeMiB = Number(arg('size-mib', '2048'));
const runs = Number(arg('runs', '5'));
const dir = mkdtempSync(join(arg('dir', tmpdir()), 'vmhost-bench-convert-'));
const REGION = 64 * MiB;
const BLOCK = 32 * MiB;

function makeSource(path: string): void {
  const fd = openSync(path, 'w');
  const buf = new Uint8Array(REGION);
  const words = new Uint32Array(buf.buffer);
  let x = 2463534242;
  for (let r = 0; r * REGION < sizeMiB * MiB; r++) {
    if (r % 2 === 0) {
      for (let i = 0; i < words.length; i++) {
        x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
        words[i] = x;
      }
    } else buf.fill(0);
    writeSync(fd, buf, 0, REGION, r * REGION);
  }
  closeSync(fd);
}

/** CPU seconds of this process (every thread) and of its waited-for children (qemu-img). */
function cpuSeconds(): number {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  const u = process.cpuUsage();
  return (Number(f[13]) + Number(f[14])) / 100 + (u.user + u.system) / 1e6; // cutime, cstime in 1/100 s
}
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ')[0]!;

async function timed(fn: () => Promise<void> | void): Promise<{ wall: number; cpu: number }> {
  const c0 = cpuSeconds();
  const t0 = process.hrtime.bigint();
  await fn();
  return { wall: Number(process.hrtime.bigint() - t0) / 1e9, cpu: cpuSeconds() - c0 };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

interface Contender { label: string; before: () => void; run: () => Promise<void> | void }

/** Runs ours and qemu alternately (so both see the same background load), `runs` times; the median of each. */
async function pair(a: Contender, b: Contender): Promise<[number, number]> {
  const times: [number[], number[]] = [[], []];
  for (let i = 0; i < runs; i++) {
    for (const [k, c] of [a, b].entries()) {
      c.before();
      execFileSync('sync'); // no dirty pages left from the previous run: each starts clean
      const t = await timed(c.run);
      times[k]!.push(t.wall);
      console.log(`  ${c.label.padEnd(26)} run ${i + 1}: ${t.wall.toFixed(2)} s, ${t.cpu.toFixed(2)} s CPU, load ${loadavg()}`);
    }
  }
  const meds = times.map((t, k) => {
    const m = median(t);
    console.log(`  ${[a, b][k]!.label.padEnd(26)} median ${m.toFixed(2)} s (${((sizeMiB * MiB) / m / 1e9).toFixed(2)} GB/s of virtual disk)`);
    return m;
  });
  return [meds[0]!, meds[1]!];
}

const src = join(dir, 'src.img');
const oursVhdx = join(dir, 'ours.vhdx'), qemuVhdx = join(dir, 'qemu.vhdx');
const oursRaw = join(dir, 'ours.raw'), qemuRaw = join(dir, 'qemu.raw');
const qemu = (...a: string[]) => execFileSync('qemu-img', a, { stdio: ['ignore', 'pipe', 'inherit'] });

try {
  console.log(`vhd-convert: ${sizeMiB} MiB raw image, alternating 64 MiB random / 64 MiB zeros, in ${dir}; in-kernel copies: ${nativeCopyStatus() ? 'on' : 'off'}`);
  makeSource(src);
  execFileSync('cat', [src], { stdio: ['ignore', 'ignore', 'inherit'] }); // warm the page cache
  // qemu-img convert's default cache mode (unsafe) never fsyncs the data it wrote; convertDisk
  // with durable: false does the same. The durable pair adds one fsync of the output to both.
  const results: string[] = [];
  for (const durable of [false, true]) {
    const tag = durable ? 'durable (one fsync of the output at the end)' : 'no fsync (qemu-img default cache=unsafe)';
    console.log(`-- ${tag}`);
    const sync = (p: string) => { if (durable) execFileSync('sync', ['--data', p]); };
    console.log('raw → dynamic VHDX (32 MiB blocks)');
    const [ours1, qemu1] = await pair({
      label: 'ours (convertDisk)', before: () => rmSync(oursVhdx, { force: true }), run: async () => {
        const s = await RawDisk.open(await NodeFile.open(src, { readOnly: true }));
        await convertDisk(s, await NodeFile.open(oursVhdx, { create: true }), { format: 'VHDX', type: 'Dynamic', blockSize: BLOCK, durable });
        await s.close();
      },
    }, {
      label: 'qemu-img convert -O vhdx', before: () => rmSync(qemuVhdx, { force: true }), run: () => {
        qemu('convert', '-f', 'raw', '-O', 'vhdx', '-o', `subformat=dynamic,block_size=${BLOCK}`, src, qemuVhdx);
        sync(qemuVhdx);
      },
    });
    console.log('dynamic VHDX → raw (the VHDX written by our engine, read by both)');
    const [ours2, qemu2] = await pair({
      label: 'ours (convertDisk)', before: () => rmSync(oursRaw, { force: true }), run: async () => {
        const s = await openVhdx(await NodeFile.open(oursVhdx, { readOnly: true }), { readOnly: true });
        await convertDisk(s, await NodeFile.open(oursRaw, { create: true }), { format: 'RAW', type: 'Fixed', durable });
        await s.close();
      },
    }, {
      label: 'qemu-img convert -O raw', before: () => rmSync(qemuRaw, { force: true }), run: () => {
        qemu('convert', '-f', 'vhdx', '-O', 'raw', oursVhdx, qemuRaw);
        sync(qemuRaw);
      },
    });
    results.push(`${tag}: raw→VHDX ${(ours1 / qemu1).toFixed(2)}, VHDX→raw ${(ours2 / qemu2).toFixed(2)}`);
  }
  // Same bytes everywhere (outside the timing).
  for (const [a, b, fa, fb] of [[src, oursVhdx, 'raw', 'vhdx'], [src, qemuVhdx, 'raw', 'vhdx'], [src, oursRaw, 'raw', 'raw'], [src, qemuRaw, 'raw', 'raw']]) {
    qemu('compare', '-q', '-f', fa!, '-F', fb!, a!, b!);
  }
  execFileSync('qemu-img', ['check', oursVhdx], { stdio: 'ignore' });
  console.log(`file sizes: ours.vhdx ${statSync(oursVhdx).size / MiB} MiB, qemu.vhdx ${statSync(qemuVhdx).size / MiB} MiB (all outputs compare identical to the source)`);
  console.log('ratio ours/qemu (median times; < 1 means ours is faster)');
  for (const r of results) console.log(`  ${r}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
