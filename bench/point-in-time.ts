// A point-in-time copy of a served disk (storage/point-in-time.ts), in two parts.
//   node --import tsx bench/point-in-time.ts          (REPEAT=3 by default)
// 1. Throughput: a served 256 MiB dynamic VHDX full of data copied to a new dynamic VHDX by
//    BlockServer.startPointInTimeCopy, alternating with the peer: qemu-img convert reading the
//    same export over NBD and writing a dynamic VHDX with QEMU's own engine. MiB/s of each and
//    the ratio, median of REPEAT runs, load average beside every row.
// 2. What the guest sees: a client writing 4 KiB at QD1 to random offsets before and during a
//    copy; median and worst write latency of each phase, the start's pause (the call's wall
//    time, the pipeline is held for part of it) and the worst write that overlapped it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { BlockServer, createDiskFile, openDiskFile } from '../src/storage/index.ts';
import { NbdTestClient } from '../src/storage/nbd/test-client.ts';
// Async: the block server runs in this process, a sync child would stall it.
import { exec } from './nbd-servers.ts';

const REPEAT = Number(process.env.REPEAT ?? 3);
const MiB = 1 << 20;
const SIZE = 256 * MiB;
const scratch = mkdtempSync(join(tmpdir(), 'pit-bench-'));
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const load = () => loadavg()[0]!.toFixed(1);

async function newTarget(name: string): Promise<string> {
  const p = join(scratch, name);
  rmSync(p, { force: true });
  await createDiskFile(p, { format: 'VHDX', type: 'Dynamic', size: SIZE });
  return p;
}

async function ours(server: BlockServer): Promise<number> {
  const p = await newTarget('ours.vhdx');
  const target = await openDiskFile(p);
  const t0 = performance.now();
  await (await server.startPointInTimeCopy([{ exportName: 'src', target }])).done;
  const s = (performance.now() - t0) / 1000;
  await target.close();
  return SIZE / MiB / s;
}

async function peer(uri: string): Promise<number> {
  const p = join(scratch, 'peer.vhdx');
  rmSync(p, { force: true });
  const t0 = performance.now();
  await exec('qemu-img', ['convert', '-f', 'raw', '-O', 'vhdx', '-o', 'subformat=dynamic', uri, p]);
  return SIZE / MiB / ((performance.now() - t0) / 1000);
}

async function guestView(server: BlockServer, socketPath: string): Promise<void> {
  const c = await NbdTestClient.connect(socketPath, 'src');
  const data = new Uint8Array(4096).fill(9);
  const samples: Array<{ start: number; end: number; phase: 'before' | 'during' }> = [];
  let phase: 'before' | 'during' = 'before';
  let writing = true;
  const writer = (async () => {
    for (let i = 0; writing; i++) {
      const start = performance.now();
      await c.write(((i * 7_340_033) % (SIZE - MiB)) & ~4095, data);
      samples.push({ start, end: performance.now(), phase });
    }
  })();
  await new Promise((r) => setTimeout(r, 1000));
  const p = await newTarget('during.vhdx');
  const target = await openDiskFile(p);
  phase = 'during';
  const s0 = performance.now();
  const copy = await server.startPointInTimeCopy([{ exportName: 'src', target }]);
  const s1 = performance.now();
  await copy.done;
  writing = false;
  await writer;
  await target.close();
  await c.disconnect();
  const lat = (ph: string) => samples.filter((x) => x.phase === ph).map((x) => x.end - x.start);
  const atStart = samples.filter((x) => x.start < s1 && x.end > s0).map((x) => x.end - x.start);
  console.log(`\nGuest writes, 4 KiB at QD1 (load ${load()})\n`);
  console.log('| phase | writes | median | worst |');
  console.log('|---|---|---|---|');
  for (const ph of ['before', 'during'] as const) {
    const l = lat(ph);
    console.log(`| ${ph} the copy | ${l.length} | ${median(l).toFixed(2)} ms | ${Math.max(...l).toFixed(2)} ms |`);
  }
  console.log(`\nstart (held idle, stage in, released): ${(s1 - s0).toFixed(2)} ms; worst write overlapping it: ${atStart.length ? Math.max(...atStart).toFixed(2) : '-'} ms`);
}

const src = join(scratch, 'src.vhdx');
await createDiskFile(src, { format: 'VHDX', type: 'Dynamic', size: SIZE });
const server = new BlockServer({ socketDir: join(scratch, 'sock') });
const served = await server.serve(src, { exportName: 'src' });
await exec('qemu-img', ['bench', '-f', 'raw', '-w', '-t', 'none', '-s', '1M', '-c', String(SIZE / MiB), '-S', '1M', '--pattern=0x5a', served.uri]);

console.log(`Throughput: ${SIZE / MiB} MiB of data, served dynamic VHDX → new dynamic VHDX\n`);
console.log('| run | ours MiB/s | load | qemu-img convert MiB/s | load | ours / peer |');
console.log('|---|---|---|---|---|---|');
const a: number[] = [], b: number[] = [];
for (let k = 0; k < REPEAT; k++) {
  const x = await ours(server);
  const lx = load();
  const y = await peer(served.uri);
  a.push(x);
  b.push(y);
  console.log(`| ${k + 1} | ${x.toFixed(0)} | ${lx} | ${y.toFixed(0)} | ${load()} | ${(x / y).toFixed(2)} |`);
}
console.log(`| median | ${median(a).toFixed(0)} | | ${median(b).toFixed(0)} | | ${(median(a) / median(b)).toFixed(2)} |`);
await guestView(server, served.socketPath);
await server.close();
