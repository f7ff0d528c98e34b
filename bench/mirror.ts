// The mirror (storage live migration, storage/mirror.ts): throughput of moving a served disk
// to a new file while the export keeps serving, next to the peer, qemu-img convert reading the
// same export over NBD into a dynamic VHDX with QEMU's own engine.
//   node --import tsx bench/mirror.ts          (REPEAT=3 by default)
// Two rows per run: idle, and under a client writing 4 KiB at QD1 to random offsets (on ours
// the writes reach both disks once their chunk is copied; the peer only reads meanwhile). Each
// mirror switches the export to its target, so the next run moves that file on; the MiB/s are
// of the 256 MiB of data, median of REPEAT runs, load average beside every row.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { BlockServer, createDiskFile, createMirrorFile } from '../src/storage/index.ts';
import { NbdTestClient } from '../src/storage/nbd/test-client.ts';
// Async: the block server runs in this process, a sync child would stall it.
import { exec } from './nbd-servers.ts';

const REPEAT = Number(process.env.REPEAT ?? 3);
const MiB = 1 << 20;
const SIZE = 256 * MiB;
const scratch = mkdtempSync(join(tmpdir(), 'mirror-bench-'));
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const load = () => loadavg()[0]!.toFixed(1);

const src = join(scratch, 'disk-0.vhdx');
await createDiskFile(src, { format: 'VHDX', type: 'Dynamic', size: SIZE });
const server = new BlockServer({ socketDir: join(scratch, 'sock') });
const served = await server.serve(src, { exportName: 'src' });
await exec('qemu-img', ['bench', '-f', 'raw', '-w', '-t', 'none', '-s', '1M', '-c', String(SIZE / MiB), '-S', '1M', '--pattern=0x5a', served.uri]);
let generation = 0;

/** A client writing 4 KiB at QD1 until stopped; resolves with its write count. */
function writer(): { stop: () => Promise<number> } {
  let writing = true;
  let n = 0;
  const data = new Uint8Array(4096).fill(7);
  const done = (async () => {
    const c = await NbdTestClient.connect(served.socketPath, 'src');
    for (let i = 0; writing; i++, n++) await c.write(((i * 7_340_033) % (SIZE - MiB)) & ~4095, data);
    await c.disconnect();
  })();
  return { stop: async () => { writing = false; await done; return n; } };
}

async function ours(): Promise<number> {
  const from = served.path!;
  const target = await createMirrorFile(served.disk, join(scratch, `disk-${++generation}.vhdx`));
  const t0 = performance.now();
  await (await server.mirror('src', { target, commit: () => Promise.resolve() })).done;
  const s = (performance.now() - t0) / 1000;
  // The export serves the target now: the source is ours to delete, as Move-VMStorage does.
  rmSync(from, { force: true });
  return SIZE / MiB / s;
}

async function peer(): Promise<number> {
  const p = join(scratch, 'peer.vhdx');
  rmSync(p, { force: true });
  const t0 = performance.now();
  await exec('qemu-img', ['convert', '-f', 'raw', '-O', 'vhdx', '-o', 'subformat=dynamic', served.uri, p]);
  return SIZE / MiB / ((performance.now() - t0) / 1000);
}

console.log(`Mirror: ${SIZE / MiB} MiB of data, served dynamic VHDX → new dynamic VHDX (export switched to it)\n`);
console.log('| run | writer | ours MiB/s | load | qemu-img convert MiB/s | load | ours / peer | guest writes (ours / peer) |');
console.log('|---|---|---|---|---|---|---|---|');
const rows = { idle: { a: [] as number[], b: [] as number[] }, writer: { a: [] as number[], b: [] as number[] } };
for (let k = 0; k < REPEAT; k++) {
  for (const mode of ['idle', 'writer'] as const) {
    let w = mode === 'writer' ? writer() : undefined;
    const x = await ours();
    const wx = (await w?.stop()) ?? 0;
    const lx = load();
    w = mode === 'writer' ? writer() : undefined;
    const y = await peer();
    const wy = (await w?.stop()) ?? 0;
    rows[mode].a.push(x);
    rows[mode].b.push(y);
    console.log(`| ${k + 1} | ${mode === 'writer' ? '4 KiB QD1' : 'none'} | ${x.toFixed(0)} | ${lx} | ${y.toFixed(0)} | ${load()} | ${(x / y).toFixed(2)} | ${mode === 'writer' ? `${wx} / ${wy}` : '-'} |`);
  }
}
for (const mode of ['idle', 'writer'] as const) {
  const { a, b } = rows[mode];
  console.log(`| median | ${mode === 'writer' ? '4 KiB QD1' : 'none'} | ${median(a).toFixed(0)} | | ${median(b).toFixed(0)} | | ${(median(a) / median(b)).toFixed(2)} | |`);
}
await server.close();
