// Sparse conversion (issue 17): raw images that are mostly file holes, converted to a dynamic
// VHDX by our engine (convertDisk, in-process, as Convert-VHD runs it) and by `qemu-img
// convert`. Two cases: 512 MiB holding 11 MiB of data, and 64 GiB holding 100 MiB. The data
// (deterministic random, 1 MiB runs) is spread evenly; everything else was never written.
// Ours and qemu-img alternate run by run, best of N each, output removed and `sync` run
// (untimed) before every run; no fsync of the output on either side (qemu-img's default). The
// hole map (native/vmhost-holes.c) must be built: scripts/build-holes.sh; VMHOST_NO_HOLE_MAP=1
// measures the fallback (every hole read as zeros).
//   node --import tsx bench/sparse-convert.ts [--runs 5] [--dir /var/tmp]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, writeSync, ftruncateSync, closeSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir, loadavg } from 'node:os';
import { NodeFile, holeMapStatus } from '../src/blockio/index.ts';
import { RawDisk } from '../src/storage/index.ts';
import { convertDisk } from '../src/vhd/index.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const BLOCK = 32 * MiB;
const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
const runs = Number(arg('runs', '5'));
const dir = mkdtempSync(join(arg('dir', tmpdir()), 'vmhost-bench-sparse-'));

/** A sparse raw of `size` bytes with `dataMiB` runs of 1 MiB random data spread evenly. */
function makeSparse(path: string, size: number, dataMiB: number): void {
  const fd = openSync(path, 'w');
  ftruncateSync(fd, size);
  const buf = new Uint8Array(MiB);
  const words = new Uint32Array(buf.buffer);
  let x = 2463534242;
  const stride = Math.floor(size / dataMiB / MiB) * MiB;
  for (let r = 0; r < dataMiB; r++) {
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
      words[i] = x;
    }
    writeSync(fd, buf, 0, MiB, r * stride + MiB);
  }
  closeSync(fd);
}

async function timed(fn: () => Promise<void> | void): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const qemu = (...a: string[]) => execFileSync('qemu-img', a, { stdio: ['ignore', 'pipe', 'inherit'] });

try {
  console.log(`sparse-convert: hole map ${JSON.stringify(holeMapStatus())}; ${execFileSync('qemu-img', ['--version']).toString().split('\n')[0]}; best of ${runs}`);
  const rows: string[] = [];
  for (const [label, size, dataMiB] of [['512 MiB, 11 MiB data', 512 * MiB, 11], ['64 GiB, 100 MiB data', 64 * GiB, 100]] as const) {
    const src = join(dir, 'src.img'), ours = join(dir, 'ours.vhdx'), peer = join(dir, 'qemu.vhdx');
    makeSparse(src, size, dataMiB);
    const t = { ours: [] as number[], qemu: [] as number[] };
    const load: number[] = [];
    for (let i = 0; i < runs; i++) {
      for (const who of i % 2 ? (['qemu', 'ours'] as const) : (['ours', 'qemu'] as const)) {
        rmSync(who === 'ours' ? ours : peer, { force: true });
        execFileSync('sync');
        load.push(loadavg()[0]!);
        t[who].push(await timed(who === 'ours'
          ? async () => {
            const s = await RawDisk.open(await NodeFile.open(src, { readOnly: true }));
            await convertDisk(s, await NodeFile.open(ours, { create: true }), { format: 'VHDX', type: 'Dynamic', blockSize: BLOCK, durable: false });
            await s.close();
          }
          : () => { qemu('convert', '-f', 'raw', '-O', 'vhdx', '-o', `subformat=dynamic,block_size=${BLOCK}`, src, peer); }));
      }
    }
    qemu('compare', '-q', '-f', 'raw', '-F', 'vhdx', src, ours);
    const bo = Math.min(...t.ours), bq = Math.min(...t.qemu);
    console.log(`${label}: ours ${t.ours.map((v) => v.toFixed(3)).join(' / ')} s; qemu-img ${t.qemu.map((v) => v.toFixed(3)).join(' / ')} s`);
    rows.push(`| ${label} | ${bo.toFixed(3)} | ${bq.toFixed(3)} | ${(bo / bq).toFixed(2)} | ${Math.min(...load).toFixed(1)}–${Math.max(...load).toFixed(1)} |`);
    rmSync(src, { force: true });
  }
  console.log('\n| case | ours (s) | qemu-img (s) | ours / qemu-img (time) | load average |\n|---|---|---|---|---|');
  for (const r of rows) console.log(r);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
