// Conversion VHDX ⇄ VHD ⇄ raw in memory: content preserved across types, block sizes and
// logical sector sizes; holes stay holes; a differencing chain converts through its leaf and
// equals an in-memory model of seeded random writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryFile } from '../blockio/memory-file.ts';
import { prng } from '../blockio/crash-file.ts';
import type { BlockFile } from '../blockio/block-file.ts';
import type { Extent, VirtualDisk } from '../blockio/virtual-disk.ts';
import { isVmhostError } from '../common/errors.ts';
import { createVhdx, openVhdx, convertDisk, type ConvertOptions } from './index.ts';
import { openVhd } from './vhd1/index.ts';
import { keepOpen, pattern } from './testing.ts';
import { MiB } from './format.ts';
import type { ParentResolver } from './chain.ts';

/** A raw image as a VirtualDisk (storage/ has the real one; vhd/ may not import it). */
function rawDisk(file: BlockFile, size: number): VirtualDisk {
  return {
    format: 'RAW', type: 'Fixed', virtualSize: size, logicalSectorSize: 512, physicalSectorSize: 4096, readOnly: file.readOnly,
    read: (b, o) => file.read(b, o), write: (b, o) => file.write(b, o), flush: () => file.flush(), trim: async () => {},
    blockStatus: async (offset: number, length: number): Promise<Extent[]> => [{ offset, length, hole: false, zero: false }],
    close: () => file.close(),
  };
}

async function openAny(f: MemoryFile, format: ConvertOptions['format'], size: number, openParent?: ParentResolver): Promise<VirtualDisk> {
  if (format === 'VHDX') return openVhdx(keepOpen(f), { readOnly: true, ...(openParent ? { openParent } : {}) });
  if (format === 'VHD') return openVhd(keepOpen(f), { readOnly: true });
  return rawDisk(keepOpen(f), size);
}

async function contents(d: VirtualDisk): Promise<Uint8Array> {
  const b = new Uint8Array(d.virtualSize);
  await d.read(b, 0);
  return b;
}

function same(a: Uint8Array, b: Uint8Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  assert.ok(Buffer.from(a).equals(Buffer.from(b)), `${what}: contents differ`);
}

/** A model disk: 3 data islands (one crossing a 1 MiB boundary, one at the very end) and zeros. */
function modelData(size: number): Uint8Array {
  const m = new Uint8Array(size);
  m.set(pattern(3 * MiB, 1), 1 * MiB);
  m.set(pattern(4096 * 3, 2), 7 * MiB - 4096);
  m.set(pattern(8192, 3), size - 8192);
  return m;
}

test('VHDX dynamic → VHD → raw → VHDX fixed 4Kn → VHDX dynamic → VHD fixed → raw keeps every byte; holes stay holes', async () => {
  const size = 24 * MiB;
  const model = modelData(size);
  const first = new MemoryFile('a.vhdx');
  await createVhdx(keepOpen(first), { type: 'Dynamic', virtualSize: size, blockSize: 1 * MiB });
  const d0 = await openVhdx(keepOpen(first));
  for (const [off, len] of [[1 * MiB, 3 * MiB], [7 * MiB - 4096, 4096 * 3], [size - 8192, 8192]] as const) {
    await d0.write(model.subarray(off, off + len), off);
  }
  await d0.close();

  const steps: Array<ConvertOptions & { name: string }> = [
    { name: 'b.vhd', format: 'VHD', type: 'Dynamic', blockSize: 512 * 1024 },
    { name: 'c.raw', format: 'RAW', type: 'Fixed' },
    { name: 'd.vhdx', format: 'VHDX', type: 'Fixed', blockSize: 2 * MiB, logicalSectorSize: 4096, physicalSectorSize: 4096 },
    { name: 'e.vhdx', format: 'VHDX', type: 'Dynamic', blockSize: 4 * MiB, logicalSectorSize: 512, physicalSectorSize: 512 },
    { name: 'f.vhd', format: 'VHD', type: 'Fixed' },
    { name: 'g.vhdx', format: 'VHDX', type: 'Dynamic', blockSize: 1 * MiB, logicalSectorSize: 4096 },
    { name: 'h.raw', format: 'RAW', type: 'Dynamic' },
  ];
  let srcFile = first;
  let srcFormat: ConvertOptions['format'] = 'VHDX';
  for (const step of steps) {
    const src = await openAny(srcFile, srcFormat, size);
    const out = new MemoryFile(step.name);
    const progress: number[] = [];
    const r = await convertDisk(src, keepOpen(out), { ...step, chunkSize: 2 * MiB, depth: 3, onProgress: (done) => progress.push(done) });
    await src.close();
    assert.equal(r.virtualSize, size);
    assert.equal(progress[progress.length - 1], size, `${step.name}: progress reaches the end`);
    // Zero granules (64 KiB) are skipped.
    assert.ok(r.bytesWritten <= 3 * MiB + 4 * 64 * 1024, `${step.name}: only data written (${r.bytesWritten})`);
    const dst = await openAny(out, step.format, size);
    assert.equal(dst.format, step.format);
    if (step.format !== 'RAW') assert.equal(dst.type, step.type);
    if (step.logicalSectorSize) assert.equal(dst.logicalSectorSize, step.logicalSectorSize);
    same(await contents(dst), model, step.name);
    if (step.format !== 'RAW' && step.type === 'Dynamic') {
      // Holes stay holes: the 8–20 MiB zero range is not allocated, and the file stays small.
      const st = await dst.blockStatus(8 * MiB, 12 * MiB);
      assert.ok(st.every((e) => e.hole), `${step.name}: zero range is a hole: ${JSON.stringify(st)}`);
      assert.ok(out.allocatedBytes < 16 * MiB, `${step.name}: ${out.allocatedBytes} bytes held`);
    }
    if (step.format === 'RAW') assert.ok(out.allocatedBytes < 8 * MiB, `${step.name}: raw stays sparse (${out.allocatedBytes})`);
    await dst.close();
    srcFile = out;
    srcFormat = step.format;
  }
});

test('a raw source with a size that is not a whole sector is padded; bad requests are refused clearly', async () => {
  const size = 3 * MiB + 100;
  const bytes = pattern(size, 9);
  const rawFile = MemoryFile.from(bytes, 'odd.img');
  const out = new MemoryFile('odd.vhdx');
  await convertDisk(rawDisk(keepOpen(rawFile), size), keepOpen(out), { format: 'VHDX', type: 'Dynamic', blockSize: 1 * MiB });
  const d = await openVhdx(keepOpen(out), { readOnly: true });
  assert.equal(d.virtualSize, 3 * MiB + 512);
  const b = await contents(d);
  same(b.subarray(0, size), bytes, 'odd raw');
  assert.ok(b.subarray(size).every((v) => v === 0));
  await d.close();

  const src = rawDisk(keepOpen(MemoryFile.from(new Uint8Array(4 * MiB + 512))), 4 * MiB + 512);
  await assert.rejects(convertDisk(src, keepOpen(new MemoryFile()), { format: 'VHD', type: 'Dynamic', logicalSectorSize: 4096 }),
    (e: unknown) => isVmhostError(e, 'VHD_INVALID_ARGUMENT') && /512-byte logical sectors only/.test((e as Error).message));
  await assert.rejects(convertDisk(src, keepOpen(new MemoryFile()), { format: 'VHDX', type: 'Dynamic', logicalSectorSize: 4096 }),
    (e: unknown) => isVmhostError(e, 'VHDX_INVALID_ARGUMENT') && /not a multiple of the 4096-byte logical sector/.test((e as Error).message));
  await assert.rejects(convertDisk(src, keepOpen(new MemoryFile()), { format: 'VHDX', type: 'Dynamic', blockSize: 3 * MiB }),
    (e: unknown) => isVmhostError(e, 'VHDX_INVALID_ARGUMENT') && /block size/.test((e as Error).message));
  const huge = { ...src, virtualSize: 2040 * 1024 * MiB + 512 };
  await assert.rejects(convertDisk(huge, keepOpen(new MemoryFile()), { format: 'VHD', type: 'Dynamic' }), (e: unknown) => isVmhostError(e, 'VHD_TOO_LARGE'));
});

test('an empty destination is never truncated to 0 (ext4 would write it back inside close); one holding bytes is, and converts right', async () => {
  const size = 4 * MiB;
  const model = modelData(8 * MiB).subarray(0, size);
  for (const format of ['VHDX', 'VHD', 'RAW'] as const) {
    for (const leftover of [0, 3 * MiB]) {
      const out = leftover ? MemoryFile.from(pattern(leftover, 7)) : new MemoryFile();
      const truncates: number[] = [];
      const dst = { ...keepOpen(out), truncate: (n: number) => { truncates.push(n); return out.truncate(n); } };
      await convertDisk(rawDisk(keepOpen(MemoryFile.from(model)), size), dst, { format, type: 'Dynamic' });
      assert.equal(truncates.includes(0), leftover > 0, `${format}, ${leftover} bytes before: truncates ${truncates.join(', ')}`);
      const d = await openAny(out, format, size);
      same(await contents(d), model, `${format} over ${leftover} bytes`);
      await d.close();
    }
  }
});

test('a three-level differencing chain with seeded random writes converts through its leaf to raw, VHD and VHDX equal to the model', async () => {
  const size = 16 * MiB;
  const files: Record<string, MemoryFile> = { base: new MemoryFile('base'), mid: new MemoryFile('mid'), leaf: new MemoryFile('leaf') };
  const openParent: ParentResolver = async (loc) => keepOpen(files[loc.relativePath ?? '']!);
  const model = new Uint8Array(size);
  const rnd = prng(2026);
  const trace = async (d: VirtualDisk, ops: number) => {
    for (let i = 0; i < ops; i++) {
      const start = Math.floor(rnd() * (size / 512));
      const n = 1 + Math.floor(rnd() * Math.min(size / 512 - start, rnd() < 0.2 ? 4096 : 64));
      const p = pattern(n * 512, Math.floor(rnd() * 1e9));
      if (rnd() < 0.1) p.fill(0); // zeros written over older data must survive conversion as zeros
      await d.write(p, start * 512);
      model.set(p, start * 512);
    }
  };
  await createVhdx(keepOpen(files.base!), { type: 'Dynamic', virtualSize: size, blockSize: 2 * MiB });
  let parentName = 'base';
  for (const name of ['base', 'mid', 'leaf']) {
    if (name !== 'base') {
      const p = await openVhdx(keepOpen(files[parentName]!), { readOnly: true, openParent });
      await createVhdx(keepOpen(files[name]!), {
        type: 'Differencing', blockSize: 1 * MiB,
        parent: { dataWriteGuid: p.dataWriteGuid, virtualSize: size, logicalSectorSize: 512, physicalSectorSize: 4096, relativePath: parentName },
      });
      await p.close();
    }
    const d = await openVhdx(keepOpen(files[name]!), { openParent });
    await trace(d, 60);
    await d.close();
    parentName = name;
  }
  for (const opts of [
    { format: 'RAW', type: 'Fixed' },
    { format: 'VHD', type: 'Dynamic', blockSize: 64 * 1024 },
    { format: 'VHDX', type: 'Dynamic', blockSize: 1 * MiB, logicalSectorSize: 4096 },
  ] as const) {
    const leaf = await openVhdx(keepOpen(files.leaf!), { readOnly: true, openParent });
    assert.equal(leaf.type, 'Differencing');
    const out = new MemoryFile('out');
    await convertDisk(leaf, keepOpen(out), { ...opts, chunkSize: 1 * MiB });
    await leaf.close();
    const dst = await openAny(out, opts.format, size);
    same(await contents(dst), model, `chain → ${opts.format}`);
    await dst.close();
  }
});
