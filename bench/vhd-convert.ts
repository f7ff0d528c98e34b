// Conversion throughput: a 2 GiB raw image (16 × 64 MiB deterministic random data, each
// followed by 64 MiB of written zeros) converted raw → dynamic VHDX and VHDX → raw, with our
// engine (convertDisk in this process) and with `qemu-img convert` on the same files. Both
// use 32 MiB blocks; ours and qemu-img alternate run by run, median of 5 each. The page cache
// is warm (the source is read once first; every run reads it again from cache) and dirty pages
// of earlier runs are synced away, untimed, before each run. Prints each run's time, CPU
// seconds (all threads, kernel included; for qemu-img its process's), the bytes it had written
// to storage (/proc/self/io) and the load average beside it, then the ratio of the medians
// ours/qemu (< 1: ours faster), once without any fsync (qemu-img's default) and once with one
// fsync of the output. VMHOST_NO_NATIVE_COPY=1
// measures ours without the in-kernel copies (blockio/file-copy.ts). `--base DIR` adds a third
// contender in the same alternation: convertDisk of another checkout (e.g. a worktree of main),
// for before/after comparisons under the same load.
// `--only to-raw|to-vhdx` and `--durable no|yes` run one direction or one mode of the four.
//   node --import tsx bench/vhd-convert.ts [--size-mib 2048] [--runs 5] [--dir /var/tmp] [--base /work/wt-base] [--only to-raw] [--durable no]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, writeSync, closeSync, rmSync, statSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
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
/** Bytes this process and its waited-for children (qemu-img) caused to be written to storage (/proc/self/io write_bytes: page cache dirtied and direct writes). */
function bytesWritten(): number {
  return Number(/^write_bytes: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))![1]);
}
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ')[0]!;

async function timed(fn: () => Promise<void> | void): Promise<{ wall: number; cpu: number; written: number }> {
  const c0 = cpuSeconds(), w0 = bytesWritten();
  const t0 = process.hrtime.bigint();
  await fn();
  return { wall: Number(process.hrtime.bigint() - t0) / 1e9, cpu: cpuSeconds() - c0, written: bytesWritten() - w0 };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

interface Contender { label: string; before: () => void; run: () => Promise<void> | void }
interface Median { wall: number; cpu: number }

/**
 * Runs the contenders alternately (so all see the same background load), `runs` times, the
 * order reversed every other round (no contender always runs right after the same one); the
 * medians of each.
 */
async function alternate(cs: Contender[]): Promise<Median[]> {
  const times = cs.map(() => ({ wall: [] as number[], cpu: [] as number[] }));
  for (let i = 0; i < runs; i++) {
    const order = [...cs.entries()];
    for (const [k, c] of i % 2 ? order.reverse() : order) {
      c.before();
      execFileSync('sync'); // no dirty pages left from the previous run: each starts clean
      const t = await timed(c.run);
      times[k]!.wall.push(t.wall);
      times[k]!.cpu.push(t.cpu);
      console.log(`  ${c.label.padEnd(26)} run ${i + 1}: ${t.wall.toFixed(2)} s, ${t.cpu.toFixed(2)} s CPU, ${(t.written / MiB).toFixed(0)} MiB written, load ${loadavg()}`);
    }
  }
  return times.map((t, k) => {
    const m = { wall: median(t.wall), cpu: median(t.cpu) };
    console.log(`  ${cs[k]!.label.padEnd(26)} median ${m.wall.toFixed(2)} s, ${m.cpu.toFixed(2)} s CPU (${((sizeMiB * MiB) / m.wall / 1e9).toFixed(2)} GB/s of virtual disk)`);
    return m;
  });
}

/** convertDisk and the file/disk openers of this checkout, or of `--base DIR`. */
interface Engine { label: string; convertDisk: typeof convertDisk; openVhdx: typeof openVhdx; RawDisk: typeof RawDisk; NodeFile: typeof NodeFile }
const engines: Engine[] = [{ label: 'ours (convertDisk)', convertDisk, openVhdx, RawDisk, NodeFile }];
const baseDir = arg('base', '');
if (baseDir) {
  const [vhd, storage, blockio] = await Promise.all(['vhd', 'storage', 'blockio'].map((m) => import(resolve(baseDir, `src/${m}/index.ts`)) as Promise<Record<string, unknown>>));
  engines.push({ label: 'ours before (--base)', convertDisk: vhd!.convertDisk as typeof convertDisk, openVhdx: vhd!.openVhdx as typeof openVhdx, RawDisk: storage!.RawDisk as typeof RawDisk, NodeFile: blockio!.NodeFile as typeof NodeFile });
}
const ratio = (a: Median, b: Median) => `${(a.wall / b.wall).toFixed(2)} (CPU ${(a.cpu / b.cpu).toFixed(2)})`;

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
  const only = arg('only', ''), durableArg = arg('durable', '');
  for (const durable of [false, true].filter((d) => durableArg === '' || d === (durableArg === 'yes'))) {
    const tag = durable ? 'durable (one fsync of the output at the end)' : 'no fsync (qemu-img default cache=unsafe)';
    console.log(`-- ${tag}`);
    const sync = (p: string) => { if (durable) execFileSync('sync', ['--data', p]); };
    console.log('raw → dynamic VHDX (32 MiB blocks)');
    // --only to-raw: the VHDX it reads is made once, untimed.
    if (only === 'to-raw' && !existsSync(oursVhdx)) {
      const s = await RawDisk.open(await NodeFile.open(src, { readOnly: true }));
      await convertDisk(s, await NodeFile.open(oursVhdx, { create: true }), { format: 'VHDX', type: 'Dynamic', blockSize: BLOCK });
      await s.close();
    }
    const toVhdx = only === 'to-raw' ? [] : await alternate([
      ...engines.map((e, k): Contender => ({
        label: e.label, before: () => rmSync(`${oursVhdx}${k || ''}`, { force: true }), run: async () => {
          const s = await e.RawDisk.open(await e.NodeFile.open(src, { readOnly: true }));
          await e.convertDisk(s, await e.NodeFile.open(`${oursVhdx}${k || ''}`, { create: true }), { format: 'VHDX', type: 'Dynamic', blockSize: BLOCK, durable });
          await s.close();
        },
      })), {
        label: 'qemu-img convert -O vhdx', before: () => rmSync(qemuVhdx, { force: true }), run: () => {
          qemu('convert', '-f', 'raw', '-O', 'vhdx', '-o', `subformat=dynamic,block_size=${BLOCK}`, src, qemuVhdx);
          sync(qemuVhdx);
        },
      },
    ]);
    console.log('dynamic VHDX → raw (the VHDX written by our engine, read by all)');
    const toRaw = only === 'to-vhdx' ? [] : await alternate([
      ...engines.map((e, k): Contender => ({
        label: e.label, before: () => rmSync(`${oursRaw}${k || ''}`, { force: true }), run: async () => {
          const s = await e.openVhdx(await e.NodeFile.open(oursVhdx, { readOnly: true }), { readOnly: true });
          await e.convertDisk(s, await e.NodeFile.open(`${oursRaw}${k || ''}`, { create: true }), { format: 'RAW', type: 'Fixed', durable });
          await s.close();
        },
      })), {
        label: 'qemu-img convert -O raw', before: () => rmSync(qemuRaw, { force: true }), run: () => {
          qemu('convert', '-f', 'vhdx', '-O', 'raw', oursVhdx, qemuRaw);
          sync(qemuRaw);
        },
      },
    ]);
    const q = engines.length;
    for (const [k, e] of engines.entries()) {
      const parts = [toVhdx.length ? `raw→VHDX ${ratio(toVhdx[k]!, toVhdx[q]!)}` : '', toRaw.length ? `VHDX→raw ${ratio(toRaw[k]!, toRaw[q]!)}` : ''];
      results.push(`${tag}, ${e.label}: ${parts.filter(Boolean).join(', ')}`);
    }
  }
  // Same bytes everywhere (outside the timing).
  const outputs = engines.flatMap((_, k) => [[`${oursVhdx}${k || ''}`, 'vhdx'], [`${oursRaw}${k || ''}`, 'raw']]);
  for (const [b, fb] of [...outputs, [qemuVhdx, 'vhdx'], [qemuRaw, 'raw']]) {
    if (existsSync(b!)) qemu('compare', '-q', '-f', 'raw', '-F', fb!, src, b!);
  }
  execFileSync('qemu-img', ['check', oursVhdx], { stdio: 'ignore' });
  const sizeOf = (p: string) => (existsSync(p) ? `${statSync(p).size / MiB} MiB` : 'not made');
  console.log(`file sizes: ours.vhdx ${sizeOf(oursVhdx)}, qemu.vhdx ${sizeOf(qemuVhdx)} (all outputs compare identical to the source)`);
  console.log('ratio to qemu-img of the median times, and of the median CPU seconds (< 1 means ours is faster / cheaper)');
  for (const r of results) console.log(`  ${r}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
