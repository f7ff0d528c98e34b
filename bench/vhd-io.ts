// I/O throughput through the VHDX engine (dynamic, 32 MiB blocks, NodeFile) against the same
// pattern on a raw file through NodeFile (the physical limit of this machine for this code
// path): sequential 1 MiB write (allocating every block) and read, 4 KiB random read at queue
// depth 1 and 16, 4 KiB random write at queue depth 16 into allocated space. Best of 3; page
// cache warm for reads. Prints MB/s or IOPS and the ratio ours/raw (1.00 = at the limit).
//   node --import tsx bench/vhd-io.ts [--size-mib 1024] [--ops 20000] [--runs 3] [--dir /var/tmp]
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { NodeFile, prng, type VirtualDisk } from '../src/blockio/index.ts';
import { RawDisk } from '../src/storage/index.ts';
import { createVhdx, openVhdx } from '../src/vhd/index.ts';

const MiB = 1024 * 1024;
const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
const size = Number(arg('size-mib', '1024')) * MiB;
const ops = Number(arg('ops', '20000'));
const runs = Number(arg('runs', '3'));
const dir = mkdtempSync(join(arg('dir', tmpdir()), 'vmhost-bench-io-'));

async function fresh(kind: 'vhdx' | 'raw'): Promise<VirtualDisk> {
  const path = join(dir, `disk.${kind}`);
  rmSync(path, { force: true });
  const f = await NodeFile.open(path, { create: true });
  if (kind === 'raw') {
    await f.truncate(size);
    return RawDisk.open(f);
  }
  await createVhdx(f, { type: 'Dynamic', virtualSize: size, blockSize: 32 * MiB });
  return openVhdx(f);
}

async function reopen(kind: 'vhdx' | 'raw'): Promise<VirtualDisk> {
  const f = await NodeFile.open(join(dir, `disk.${kind}`));
  return kind === 'raw' ? RawDisk.open(f) : openVhdx(f);
}

const data = new Uint8Array(MiB);
{
  const r = prng(7);
  for (let i = 0; i < data.length; i++) data[i] = (r() * 256) | 0;
}

async function seqWrite(d: VirtualDisk): Promise<void> {
  for (let o = 0; o < size; o += MiB) await d.write(data, o);
  await d.flush();
}
async function seqRead(d: VirtualDisk): Promise<void> {
  const b = new Uint8Array(MiB);
  for (let o = 0; o < size; o += MiB) await d.read(b, o);
}
async function random(d: VirtualDisk, write: boolean, qd: number): Promise<void> {
  const r = prng(11);
  const blocks = size / 4096;
  let next = 0;
  const worker = async () => {
    const b = write ? data.slice(0, 4096) : new Uint8Array(4096);
    while (next < ops) {
      next++;
      const off = Math.floor(r() * blocks) * 4096;
      if (write) await d.write(b, off);
      else await d.read(b, off);
    }
  };
  await Promise.all(Array.from({ length: qd }, worker));
  if (write) await d.flush();
}

async function best(fn: () => Promise<number>): Promise<number> {
  let b = Infinity;
  for (let i = 0; i < runs; i++) b = Math.min(b, await fn());
  return b;
}
async function time(fn: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

interface Case { name: string; unit: 'MB/s' | 'IOPS'; amount: number; run: (kind: 'vhdx' | 'raw') => Promise<number> }
const cases: Case[] = [
  { name: 'sequential write 1 MiB (allocating)', unit: 'MB/s', amount: size / 1e6, run: async (k) => {
    const d = await fresh(k);
    const t = await time(() => seqWrite(d));
    await d.close();
    return t;
  } },
  { name: 'sequential read 1 MiB', unit: 'MB/s', amount: size / 1e6, run: async (k) => {
    const d = await reopen(k);
    const t = await time(() => seqRead(d));
    await d.close();
    return t;
  } },
  ...[1, 16].map((qd): Case => ({ name: `random read 4 KiB QD${qd}`, unit: 'IOPS', amount: ops, run: async (k) => {
    const d = await reopen(k);
    const t = await time(() => random(d, false, qd));
    await d.close();
    return t;
  } })),
  { name: 'random write 4 KiB QD16 (allocated)', unit: 'IOPS', amount: ops, run: async (k) => {
    const d = await reopen(k);
    const t = await time(() => random(d, true, 16));
    await d.close();
    return t;
  } },
];

try {
  console.log(`vhd-io: ${size / MiB} MiB disk, ${ops} random ops, best of ${runs}, in ${dir}`);
  console.log(`${'case'.padEnd(38)} ${'VHDX engine'.padStart(14)} ${'raw NodeFile'.padStart(14)}  ours/raw`);
  for (const c of cases) {
    const ours = await best(() => c.run('vhdx'));
    const raw = await best(() => c.run('raw'));
    const fmt = (t: number) => `${(c.amount / t).toFixed(0)} ${c.unit}`.padStart(14);
    console.log(`${c.name.padEnd(38)} ${fmt(ours)} ${fmt(raw)}  ${(raw / ours).toFixed(2)}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
