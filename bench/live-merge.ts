// Live merge throughput (issue 10): a 1 GiB differencing VHDX (every byte its own) merged into
// its parent by the block server (BlockServer.merge, served-merge.ts) while the export is
// served, idle and under a writing client, next to the peer: `qemu-img commit` of a qcow2
// overlay holding the same 1 GiB into its qcow2 base (QEMU cannot open VHDX differencing
// disks, and its live commit needs a running VM; the offline commit is the same copy).
//   node --import tsx bench/live-merge.ts            (SIZE_MIB=1024 REPEAT=3 by default)
// Each run builds fresh files (in the page cache, `sync` before timing). With load: a
// client writes 4 KiB at QD1 at scattered offsets for the whole merge; printed too: its
// median and worst write latency during the merge.
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlockServer, createDifferencingFile, createDiskFile, openDiskFile } from '../src/storage/index.ts';
import { NbdTestClient } from '../src/storage/nbd/test-client.ts';

const MiB = 1 << 20;
const SIZE = Number(process.env.SIZE_MIB ?? 1024) * MiB;
const REPEAT = Number(process.env.REPEAT ?? 3);
const scratch = mkdtempSync(join(tmpdir(), 'merge-bench-'));
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const load = () => loadavg()[0]!.toFixed(1);

/** Deterministic non-zero data for offset `o` (so neither side can skip it as zeros). */
function chunk(o: number): Uint8Array {
  const b = new Uint8Array(4 * MiB);
  const v = new Uint32Array(b.buffer);
  for (let i = 0; i < v.length; i++) v[i] = (o / 4 + i) * 2654435761 + 1;
  return b;
}

async function vhdxChain(k: number): Promise<{ base: string; child: string }> {
  const base = join(scratch, `base${k}.vhdx`), child = join(scratch, `child${k}.avhdx`);
  await createDiskFile(base, { format: 'VHDX', type: 'Dynamic', size: 2 * SIZE });
  await createDifferencingFile(child, base, { format: 'VHDX' });
  const d = await openDiskFile(child);
  for (let o = 0; o < SIZE; o += 4 * MiB) await d.write(chunk(o), o);
  await d.close();
  return { base, child };
}

function qcowChain(k: number): { base: string; top: string } {
  const base = join(scratch, `base${k}.qcow2`), top = join(scratch, `top${k}.qcow2`), raw = join(scratch, `data${k}.raw`);
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, String(2 * SIZE)]);
  // The same bytes as the VHDX child: written raw, then copied into the overlay by qemu-img (no commit involved).
  writeFileSync(raw, new Uint8Array(0));
  for (let o = 0; o < SIZE; o += 4 * MiB) appendFileSync(raw, chunk(o));
  truncateSync(raw, 2 * SIZE);
  // -B: the overlay holds what differs from its (empty) base, i.e. the data.
  execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', '-B', base, '-F', 'qcow2', raw, top]);
  rmSync(raw);
  return { base, top };
}

async function ours(k: number, withLoad: boolean): Promise<{ s: number; lat?: number[] }> {
  const { base, child } = await vhdxChain(k);
  execFileSync('sync');
  const server = new BlockServer({ socketDir: join(scratch, `sock${k}`) });
  const served = await server.serve(child, { exportName: 'm' });
  const c = await NbdTestClient.connect(served.socketPath, 'm');
  const lat: number[] = [];
  let writing = withLoad;
  const data = new Uint8Array(4096).fill(0x5a);
  const writer = (async () => {
    for (let i = 0; writing; i++) {
      const t = performance.now();
      await c.write(((i * 1_052_672) % (2 * SIZE - 4096)) & ~4095, data);
      lat.push(performance.now() - t);
    }
  })();
  const t0 = performance.now();
  await server.merge('m', { child, target: base, commit: () => Promise.resolve() });
  const s = (performance.now() - t0) / 1000;
  writing = false;
  await writer;
  await c.disconnect();
  await server.close();
  rmSync(base);
  return withLoad ? { s, lat } : { s };
}

function peer(k: number): number {
  const { base, top } = qcowChain(k);
  execFileSync('sync');
  const t0 = performance.now();
  execFileSync('qemu-img', ['commit', '-q', '-f', 'qcow2', top]);
  const s = (performance.now() - t0) / 1000;
  rmSync(base);
  rmSync(top);
  return s;
}

const mib = SIZE / MiB;
const rows: string[] = [];
const oursIdle: number[] = [], oursLoaded: number[] = [], peers: number[] = [], lats: number[] = [];
let worst = 0;
for (let k = 0; k < REPEAT; k++) {
  peers.push(peer(k));
  oursIdle.push((await ours(k, false)).s);
  const r = await ours(k, true);
  oursLoaded.push(r.s);
  lats.push(...r.lat!);
  worst = Math.max(worst, ...r.lat!);
  rows.push(`run ${k + 1}: qemu-img commit ${peers[k]!.toFixed(2)} s, ours idle ${oursIdle[k]!.toFixed(2)} s, ours under load ${oursLoaded[k]!.toFixed(2)} s (load ${load()})`);
}
console.log(rows.join('\n'));
const rate = (s: number) => mib / s;
console.log(`\nLive merge of a ${mib} MiB differencing disk, median of ${REPEAT} (load ${load()})\n`);
console.log('| case | MiB/s | ours / qemu-img commit |');
console.log('|---|---|---|');
const p = median(peers);
console.log(`| qemu-img commit (qcow2 overlay → base) | ${rate(p).toFixed(0)} | 1.00 |`);
console.log(`| ours, export idle | ${rate(median(oursIdle)).toFixed(0)} | ${(p / median(oursIdle)).toFixed(2)} |`);
console.log(`| ours, a client writing 4 KiB at QD1 throughout | ${rate(median(oursLoaded)).toFixed(0)} | ${(p / median(oursLoaded)).toFixed(2)} |`);
console.log(`\nThe writing client during the merges: ${lats.length} writes, median ${median(lats).toFixed(2)} ms, worst ${worst.toFixed(1)} ms`);
