// Fixed and dynamic VHDs in memory: random write/trim traces against a model, block
// status, grow, Get-VHD facts, the integrity check, and crashes at every write.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryFile, CrashFile } from '../../blockio/index.ts';
import { isVmhostError } from '../../common/errors.ts';
import { createVhd, openVhd, describeVhd, checkVhd, resizeVhd } from './index.ts';
import { DiskModel, firstMismatch, pattern, prng, sameBytes } from './test-support.ts';

const MiB = 1024 * 1024;

async function randomTrace(disk: Awaited<ReturnType<typeof openVhd>>, model: DiskModel, seed: number, ops: number, trims = true): Promise<void> {
  const r = prng(seed);
  const sectors = disk.virtualSize / 512;
  for (let i = 0; i < ops; i++) {
    const len = 1 + Math.floor(r() * (r() < 0.2 ? 9000 : 64));
    const start = Math.floor(r() * Math.max(1, sectors - len));
    const n = Math.min(len, sectors - start);
    if (trims && r() < 0.15) {
      await disk.trim(start * 512, n * 512);
      model.zero(start * 512, n * 512);
    } else {
      const data = pattern(n * 512, seed * 1000 + i);
      await disk.write(data, start * 512);
      model.write(data, start * 512);
    }
  }
}

for (const type of ['Fixed', 'Dynamic'] as const) {
  test(`${type}: random writes and trims match the model, also after reopen`, async () => {
    const file = new MemoryFile('t.vhd');
    await createVhd(file, { type, size: 40 * MiB + 512 * 3, blockSize: type === 'Dynamic' ? 512 * 1024 : undefined });
    let disk = await openVhd(file);
    const model = new DiskModel(disk.virtualSize);
    await randomTrace(disk, model, 1, 300);
    assert.equal(await firstMismatch(disk, (o, l) => model.read(o, l)), -1);
    await disk.flush();
    disk = await openVhd(file);
    assert.equal(await firstMismatch(disk, (o, l) => model.read(o, l)), -1);
    assert.deepEqual(await checkVhd(file), []);
    const info = await describeVhd(disk);
    assert.equal(info.VhdType, type);
    assert.equal(info.Size, 40 * MiB + 1536);
    assert.equal(info.BlockSize, type === 'Fixed' ? 0 : 512 * 1024);
    assert.equal(info.LogicalSectorSize, 512);
    assert.match(info.DiskIdentifier, /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/);
  });
}

test('Dynamic: fresh disk is small, holes report as holes, writes as data', async () => {
  const file = new MemoryFile('d.vhd');
  await createVhd(file, { type: 'Dynamic', size: 100 * MiB });
  assert.ok((await file.size()) < 4096);
  const d = await openVhd(file);
  assert.deepEqual(await d.blockStatus(0, d.virtualSize), [{ offset: 0, length: 100 * MiB, hole: true, zero: true }]);
  await d.write(pattern(4096, 3), 3 * MiB + 8192);
  assert.deepEqual(await d.blockStatus(2 * MiB, 4 * MiB), [
    { offset: 2 * MiB, length: MiB + 8192, hole: true, zero: true },
    { offset: 3 * MiB + 8192, length: 4096, hole: false, zero: false },
    { offset: 3 * MiB + 12288, length: MiB - 12288 + 2 * MiB, hole: true, zero: true },
  ]);
  assert.equal(await file.size(), 512 + 1024 + 512 + 512 + 2 * MiB + 512);
  // A whole-block trim frees the block.
  await d.write(pattern(2 * MiB, 4), 10 * MiB);
  await d.trim(10 * MiB, 2 * MiB);
  assert.equal(d.bat![5], 0xffffffff);
  const z = new Uint8Array(2 * MiB);
  await d.read(z, 10 * MiB);
  assert.ok(z.every((b) => b === 0));
  const info = await describeVhd(d);
  assert.equal(info.MinimumSize, 4 * MiB);
  assert.equal(info.FragmentationPercentage, 0);
});

test('Dynamic: blocks allocated out of order count as fragmentation', async () => {
  const file = new MemoryFile('f.vhd');
  await createVhd(file, { type: 'Dynamic', size: 20 * MiB });
  const d = await openVhd(file);
  for (const b of [4, 1, 2, 3]) await d.write(new Uint8Array(512).fill(b), b * 2 * MiB);
  assert.equal((await describeVhd(d)).FragmentationPercentage, 33);
});

test('grow: fixed moves the footer, dynamic grows the BAT in place and by relocation', async () => {
  const fixed = new MemoryFile('g1.vhd');
  await createVhd(fixed, { type: 'Fixed', size: 3 * MiB });
  let d = await openVhd(fixed);
  const tail = pattern(512, 9);
  await d.write(tail, 3 * MiB - 512);
  await resizeVhd(d, 5 * MiB);
  assert.equal(d.virtualSize, 5 * MiB);
  d = await openVhd(fixed);
  assert.equal(d.virtualSize, 5 * MiB);
  const b = new Uint8Array(1024);
  await d.read(b, 3 * MiB - 512);
  assert.ok(sameBytes(b.subarray(0, 512), tail) && b.subarray(512).every((x) => x === 0));
  assert.equal(await fixed.size(), 5 * MiB + 512);

  for (const [from, to] of [[4 * MiB, 40 * MiB], [4 * MiB, 1024 * MiB]] as const) {
    const file = new MemoryFile('g2.vhd');
    await createVhd(file, { type: 'Dynamic', size: from });
    let dd = await openVhd(file);
    const model = new DiskModel(from);
    await randomTrace(dd, model, 5, 30, false);
    const oldTable = dd.header!.tableOffset;
    await resizeVhd(dd, to);
    model.size = to;
    assert.equal(dd.header!.tableOffset !== oldTable, to === 1024 * MiB, 'relocated only when the padded table is full');
    await randomTrace(dd, model, 6, 30, false);
    dd = await openVhd(file);
    assert.equal(dd.virtualSize, to);
    assert.equal(await firstMismatch(dd, (o, l) => model.read(o, l), 8 * MiB), -1);
    assert.deepEqual(await checkVhd(file), []);
  }
  await assert.rejects(resizeVhd(await openVhd(fixed), 1 * MiB), (e) => isVmhostError(e, 'VHD_INVALID_ARGUMENT'));
  await assert.rejects(resizeVhd(await openVhd(fixed), 2041 * 1024 * MiB), (e) => isVmhostError(e, 'VHD_TOO_LARGE'));
});

test('bad arguments and read-only', async () => {
  const file = new MemoryFile('a.vhd');
  await createVhd(file, { type: 'Dynamic', size: 4 * MiB });
  const d = await openVhd(file);
  await assert.rejects(d.read(new Uint8Array(100), 0), (e) => isVmhostError(e, 'VHD_INVALID_ARGUMENT'));
  await assert.rejects(d.read(new Uint8Array(512), 4 * MiB), (e) => isVmhostError(e, 'VHD_INVALID_ARGUMENT'));
  const ro = await openVhd(file, { readOnly: true });
  await assert.rejects(ro.write(new Uint8Array(512), 0), (e) => isVmhostError(e, 'VHD_READ_ONLY'));
  await assert.rejects(createVhd(new MemoryFile(), { type: 'Dynamic', size: 1000 }), (e) => isVmhostError(e, 'VHD_INVALID_ARGUMENT'));
  await assert.rejects(createVhd(new MemoryFile(), { type: 'Dynamic', size: 4 * MiB, blockSize: 3000 }), (e) => isVmhostError(e, 'VHD_INVALID_ARGUMENT'));
});

test('check reports damaged checksums, a missing footer copy and bad BAT entries', async () => {
  const file = new MemoryFile('c.vhd');
  await createVhd(file, { type: 'Dynamic', size: 8 * MiB });
  const d = await openVhd(file);
  await d.write(pattern(512, 1), 0);
  await d.write(pattern(512, 2), 2 * MiB);
  await d.flush();
  const codes = async (f: MemoryFile) => (await checkVhd(f)).map((p) => p.code).sort();

  const h = file.clone(); h.writeSync(new Uint8Array([0x55]), 512 + 900);
  assert.deepEqual(await codes(h), ['HEADER_CHECKSUM']);
  await assert.rejects(openVhd(h), (e) => isVmhostError(e, 'VHD_CORRUPT'));

  const c = file.clone(); c.writeSync(new Uint8Array(512), 0);
  assert.deepEqual(await codes(c), ['FOOTER_COPY']);

  const size = await file.size();
  const t = file.clone(); t.writeSync(new Uint8Array([1]), size - 300);
  assert.deepEqual(await codes(t), ['FOOTER_CHECKSUM']); // a warning: the copy at 0 stands in
  const rec = await openVhd(t);
  const one = new Uint8Array(512);
  await rec.read(one, 2 * MiB);
  assert.ok(sameBytes(one, pattern(512, 2)));
  assert.deepEqual(await checkVhd(t), [], 'read-write open rewrote the trailing footer');

  const o = file.clone(); o.writeSync(new Uint8Array([0, 0, 0, 5]), 1536 + 4); // block 1 → sector 5: overlaps the header
  assert.ok((await codes(o)).includes('BAT_OVERLAP'));
  const r = file.clone(); r.writeSync(new Uint8Array([0, 0x10, 0, 0]), 1536 + 4);
  assert.deepEqual(await codes(r), ['BAT_RANGE']);
  await assert.rejects(openVhd(r), (e) => isVmhostError(e, 'VHD_CORRUPT'));
  const dup = file.clone(); dup.writeSync(new Uint8Array(4).fill(0), 1536 + 8); // copy block 0's entry
  const e0 = new Uint8Array(4); await file.read(e0, 1536); dup.writeSync(e0, 1536 + 8);
  assert.ok((await codes(dup)).includes('BAT_OVERLAP'));
});

test('crash at every write of a dynamic disk: flushed data survives, the file always opens', async () => {
  const base = new MemoryFile('crash.vhd');
  await createVhd(base, { type: 'Dynamic', size: 16 * MiB, blockSize: 1 * MiB });
  const file = new CrashFile(base);
  const d = await openVhd(file);
  const model = new DiskModel(16 * MiB);
  // flushed[k] = model contents after the k-th flush, with the op index where it happened.
  const flushed: { at: number; snapshot: DiskModel }[] = [{ at: 0, snapshot: new DiskModel(16 * MiB) }];
  const r = prng(42);
  for (let i = 0; i < 40; i++) {
    const off = Math.floor(r() * 16 * 2048 - 8) * 512;
    const data = pattern(512 * (1 + Math.floor(r() * 8)), i);
    await d.write(data, off);
    model.write(data, off);
    if (i % 5 === 4) {
      await d.flush();
      const snap = new DiskModel(16 * MiB);
      for (const [k, v] of model.sectors) snap.sectors.set(k, v);
      flushed.push({ at: file.opCount, snapshot: snap });
    }
  }
  const variants = [{ kind: 'flushed-only' as const }, { kind: 'torn-last' as const, seed: 1 }, { kind: 'random-subset' as const, seed: 2 }];
  for (const cut of file.writeBoundaries()) {
    for (const v of variants) {
      const img = file.stateAt(cut, v);
      const disk = await openVhd(img);
      // Everything flushed before the cut must read back (later writes may or may not).
      const last = [...flushed].reverse().find((f) => f.at <= file.durablePrefix(cut))!;
      for (const [sector, bytes] of last.snapshot.sectors) {
        const laterWrite = model.sectors.get(sector) !== bytes;
        if (laterWrite) continue;
        const got = new Uint8Array(512);
        await disk.read(got, sector * 512);
        assert.ok(sameBytes(got, bytes), `cut ${cut} ${v.kind}: sector ${sector} lost`);
      }
    }
  }
});

test('crash at every step of a BAT-relocating grow: the disk opens with the old or the new size and its data', async () => {
  const base = new MemoryFile('grow.vhd');
  await createVhd(base, { type: 'Dynamic', size: 4 * MiB, blockSize: 1 * MiB });
  const pre = await openVhd(base);
  await pre.write(pattern(4096, 1), 1 * MiB);
  await pre.flush();
  const file = new CrashFile(base);
  const d = await openVhd(file);
  await resizeVhd(d, 1024 * MiB); // 1024 entries: the one-sector table must move
  for (let cut = 0; cut <= file.opCount; cut++) {
    for (const v of [{ kind: 'flushed-only' as const }, { kind: 'torn-last' as const, seed: cut }, { kind: 'random-subset' as const, seed: cut }]) {
      const disk = await openVhd(file.stateAt(cut, v));
      assert.ok(disk.virtualSize === 4 * MiB || disk.virtualSize === 1024 * MiB, `cut ${cut}: size ${disk.virtualSize}`);
      const got = new Uint8Array(4096);
      await disk.read(got, 1 * MiB);
      assert.ok(sameBytes(got, pattern(4096, 1)), `cut ${cut} ${v.kind}: data lost`);
    }
  }
  assert.equal((await openVhd(file.stateAt(file.opCount))).virtualSize, 1024 * MiB);
});

test('concurrent writes and reads on a dynamic disk', async () => {
  const file = new MemoryFile('conc.vhd');
  await createVhd(file, { type: 'Dynamic', size: 16 * MiB, blockSize: 1 * MiB });
  const d = await openVhd(file);
  const model = new DiskModel(16 * MiB);
  const writes = Array.from({ length: 64 }, (_, i) => ({ off: ((i * 37) % 128) * 128 * 1024, data: pattern(64 * 1024, i) }));
  const seen = new Set<number>();
  for (const w of writes) {
    if (seen.has(w.off)) continue;
    seen.add(w.off);
    model.write(w.data, w.off);
  }
  await Promise.all(writes.filter((w, i) => writes.findIndex((x) => x.off === w.off) === i).map(async (w) => {
    await d.write(w.data, w.off);
    await d.read(new Uint8Array(1 * MiB), Math.floor(w.off / MiB) * MiB);
  }));
  assert.equal(await firstMismatch(d, (o, l) => model.read(o, l)), -1);
  assert.deepEqual(await checkVhd(file), []);
});

test('grow never writes over a structure packed right after an unpadded BAT', async () => {
  const { decodeDynamicHeader, encodeDynamicHeader } = await import('./dynamic-header.ts');
  const { Platform, encodeUtf16le } = await import('./parent-locator.ts');
  const file = new MemoryFile('packed.vhd');
  await createVhd(file, { type: 'Dynamic', size: 4 * MiB }); // 2 entries: 8 bytes of a 512-byte table sector
  const raw = new Uint8Array(1024);
  file.readSync(raw, 512);
  const h = decodeDynamicHeader(raw)!.header;
  const data = encodeUtf16le('/somewhere/else.vhd');
  h.locators[0] = { platformCode: Platform.W2ku, platformDataSpace: 512, platformDataLength: data.length, platformDataOffset: h.tableOffset + 8 };
  file.writeSync(encodeDynamicHeader(h), 512);
  file.writeSync(data, h.tableOffset + 8);
  assert.deepEqual(await checkVhd(file), []);
  const d = await openVhd(file);
  assert.equal(d.tableCapacity, 2);
  await d.write(pattern(512, 1), 3 * MiB);
  await resizeVhd(d, 20 * MiB);
  assert.notEqual(d.header!.tableOffset, h.tableOffset, 'table moved');
  const after = new Uint8Array(data.length);
  file.readSync(after, h.tableOffset + 8);
  assert.ok(sameBytes(after, data), 'locator data intact');
  assert.deepEqual(await checkVhd(file), []);
  const again = await openVhd(file);
  const got = new Uint8Array(512);
  await again.read(got, 3 * MiB);
  assert.ok(sameBytes(got, pattern(512, 1)));
  await again.write(pattern(512, 2), 19 * MiB);
  assert.deepEqual(await checkVhd(file), []);
});
