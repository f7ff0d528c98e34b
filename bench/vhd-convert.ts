// Conversion throughput: a 2 GiB raw image (16 × 64 MiB deterministic random data, each
// followed by 64 MiB of written zeros) converted raw → dynamic VHDX and VHDX → raw, with our
// engine (convertDisk in this process) and with `qemu-img convert` on the same files. Both
// use 32 MiB blocks; best of 3 each, ours and qemu-img alternating run by run. The page cache
// is warm (the source is read once first; every run reads it again from cache) and dirty pages
// of earlier runs are synced away, untimed, before each run. Prints times and the ratio
// ours/qemu (< 1: ours faster), once without any fsync (qemu-img's default) and once with one
// fsync of the output.
//   node --import tsx bench/vhd-convert.ts [--size-mib 2048] [--runs 3] [--dir /var/tmp]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, writeSync, closeSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { NodeFile } from '../src/blockio/index.ts';
import { RawDisk } from '../src/storage/index.ts';
import { convertDisk, openVhdx } from '../src/vhd/index.ts';

const MiB = 1024 * 1024;
const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
const sizeMiB = Number(arg('size-mib', '2048'));
const runs = Number(arg('runs', '3'));
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

async function timed(fn: () => Promise<void> | void): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

interface Contender { label: string; before: () => void; run: () => Promise<void> | void }

/** Runs ours and qemu alternately (so both see the same background load), `runs` times; best of each. */
async function pair(a: Contender, b: Contender): Promise<[number, number]> {
  const times: [number[], number[]] = [[], []];
  for (let i = 0; i < runs; i++) {
    for (const [k, c] of [a, b].entries()) {
      c.before();
      execFileSync('sync'); // no dirty pages left from the previous run: each starts clean
      times[k]!.push(await timed(c.run));
    }
  }
  const bests = times.map((t, k) => {
    const best = Math.min(...t);
    console.log(`  ${[a, b][k]!.label.padEnd(34)} ${t.map((x) => x.toFixed(2)).join(' / ')} s  best ${best.toFixed(2)} s  (${((sizeMiB * MiB) / best / 1e9).toFixed(2)} GB/s of virtual disk)`);
    return best;
  });
  return [bests[0]!, bests[1]!];
}

const src = join(dir, 'src.img');
const oursVhdx = join(dir, 'ours.vhdx'), qemuVhdx = join(dir, 'qemu.vhdx');
const oursRaw = join(dir, 'ours.raw'), qemuRaw = join(dir, 'qemu.raw');
const qemu = (...a: string[]) => execFileSync('qemu-img', a, { stdio: ['ignore', 'pipe', 'inherit'] });

try {
  console.log(`vhd-convert: ${sizeMiB} MiB raw image, alternating 64 MiB random / 64 MiB zeros, in ${dir}`);
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
  console.log('ratio ours/qemu (time; < 1 means ours is faster)');
  for (const r of results) console.log(`  ${r}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
