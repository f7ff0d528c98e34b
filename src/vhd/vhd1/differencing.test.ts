// Differencing VHDs: chains of 2 and 3 with random write/trim traces against a layered
// model, parent locators handed to the resolver, identity checks, only a VHD as parent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryFile } from '../../blockio/index.ts';
import type { BlockFile } from '../../blockio/index.ts';
import { isVmhostError } from '../../common/errors.ts';
import { createVhd, openVhd, describeVhd, checkVhd, resizeVhd, type VhdDisk } from './index.ts';
import { DiskModel, firstMismatch, pattern, prng } from './test-support.ts';

const MiB = 1024 * 1024;

/** A read-only view of a MemoryFile that survives close() (parents are reopened many times). */
function readOnlyView(f: MemoryFile): BlockFile {
  return {
    name: f.name, readOnly: true,
    read: (b, o) => f.read(b, o), write: async () => { throw new Error('read-only'); }, flush: async () => {},
    size: () => f.size(), truncate: async () => { throw new Error('read-only'); }, close: async () => {},
  };
}

function resolverOver(files: Map<string, MemoryFile>, seen: string[][] = []) {
  return async (paths: string[]): Promise<BlockFile> => {
    seen.push(paths);
    for (const p of paths) {
      const abs = p.startsWith('./') ? `/vms/${p.slice(2)}` : p;
      const f = files.get(abs);
      if (f) return f.clone({ readOnly: true });
    }
    throw new Error(`no parent among ${paths.join(', ')}`);
  };
}

/** A fixed VHD holding `bytes`, as a parent. */
async function fixedVhdOf(bytes: Uint8Array, name: string): Promise<MemoryFile> {
  const f = new MemoryFile(name);
  await createVhd(f, { type: 'Fixed', size: bytes.length });
  const d = await openVhd(f);
  await d.write(bytes, 0);
  await d.flush();
  return f;
}

async function trace(disk: VhdDisk, model: DiskModel, seed: number, ops: number): Promise<void> {
  const r = prng(seed);
  const sectors = disk.virtualSize / 512;
  for (let i = 0; i < ops; i++) {
    const n = 1 + Math.floor(r() * (r() < 0.2 ? 5000 : 40));
    const s = Math.floor(r() * (sectors - n));
    if (r() < 0.15) {
      await disk.trim(s * 512, n * 512);
      model.zero(s * 512, n * 512);
    } else {
      const data = pattern(n * 512, seed * 7919 + i);
      await disk.write(data, s * 512);
      model.write(data, s * 512);
    }
  }
}

for (const depth of [2, 3]) {
  test(`chain of ${depth}: reads fall through by sector bitmap, writes go to the leaf`, async () => {
    const size = 12 * MiB + 1024;
    const files = new Map<string, MemoryFile>();
    const base = new MemoryFile('/vms/base.vhd');
    await createVhd(base, { type: 'Dynamic', size, blockSize: 1 * MiB });
    files.set(base.name, base);
    let model = new DiskModel(size);
    let disk = await openVhd(base);
    await trace(disk, model, 1, 120);
    await disk.flush();
    const resolve = resolverOver(files);
    for (let level = 1; level < depth; level++) {
      const parentFile = [...files.values()].pop()!;
      const parent = await openVhd(parentFile.clone({ readOnly: true }), { openParent: resolve });
      const child = new MemoryFile(`/vms/child${level}.vhd`);
      await createVhd(child, { type: 'Differencing', parent: { disk: parent, path: parentFile.name }, blockSize: level === 1 ? 512 * 1024 : undefined });
      await parent.close();
      files.set(child.name, child);
      disk = await openVhd(child, { openParent: resolve });
      assert.equal(disk.type, 'Differencing');
      assert.equal(disk.virtualSize, size);
      // The untouched child reads exactly like its parent.
      assert.equal(await firstMismatch(disk, (o, l) => model.read(o, l)), -1);
      model = new DiskModel(size, model);
      await trace(disk, model, level * 10, 150);
      assert.equal(await firstMismatch(disk, (o, l) => model.read(o, l)), -1);
      await disk.flush(); // not close(): that would close the MemoryFile for good
      disk = await openVhd(child, { openParent: resolve });
      assert.equal(await firstMismatch(disk, (o, l) => model.read(o, l)), -1, 'after reopen');
      assert.deepEqual(await checkVhd(child), []);
      const info = await describeVhd(disk);
      assert.equal(info.ParentPath, parentFile.name);
      assert.equal(info.VhdType, 'Differencing');
      // Block status: every extent reported as data must be in some layer, holes read zero.
      for (const e of await disk.blockStatus(0, size)) {
        if (!e.hole) continue;
        const b = new Uint8Array(e.length);
        await disk.read(b, e.offset);
        assert.ok(b.every((x) => x === 0), `hole at ${e.offset} reads zeros`);
      }
      await disk.flush();
    }
  });
}

test('locators: relative path first, then absolute; parent name last', async () => {
  const base = new MemoryFile('/vms/base.vhd');
  await createVhd(base, { type: 'Dynamic', size: 4 * MiB });
  const files = new Map([[base.name, base]]);
  const seen: string[][] = [];
  const child = new MemoryFile('/vms/sub/child.vhd');
  await createVhd(child, { type: 'Differencing', parent: { disk: await openVhd(base), path: base.name } });
  const d = await openVhd(child, { openParent: resolverOver(files, seen) });
  assert.deepEqual(seen[0], ['../base.vhd', '/vms/base.vhd', 'base.vhd']);
  assert.equal(d.header!.parentUnicodeName, 'base.vhd');
  assert.deepEqual(d.header!.locators.slice(0, 3).map((l) => l.platformCode.toString(16)), ['57327275', '57326b75', '4d616358']);
});

test('parent identity: unique id and time stamp are checked', async () => {
  const base = new MemoryFile('/vms/base.vhd');
  await createVhd(base, { type: 'Dynamic', size: 4 * MiB, timeStamp: 1000 });
  const child = new MemoryFile('/vms/child.vhd');
  await createVhd(child, { type: 'Differencing', parent: { disk: await openVhd(base), path: base.name } });
  const other = new MemoryFile('/vms/base.vhd');
  await createVhd(other, { type: 'Dynamic', size: 4 * MiB, timeStamp: 1000 });
  await assert.rejects(openVhd(child, { openParent: async () => other }), (e) => isVmhostError(e, 'VHD_PARENT_MISMATCH'));
  const touched = base.clone();
  const { footer } = await openVhd(base);
  const { encodeFooter } = await import('./footer.ts');
  const newer = encodeFooter({ ...footer, timeStamp: 2000 });
  touched.writeSync(newer, 0);
  touched.writeSync(newer, (await touched.size()) - 512);
  await assert.rejects(openVhd(child, { openParent: async () => touched }), (e) => isVmhostError(e, 'VHD_PARENT_MISMATCH'));
  await openVhd(child, { openParent: async () => touched.clone(), ignoreParentTimeStamp: true });
  await assert.rejects(openVhd(child), (e) => isVmhostError(e, 'VHD_INVALID_ARGUMENT'));
  await assert.rejects(openVhd(child, { openParent: async () => { throw new Error('gone'); } }), (e) => isVmhostError(e, 'VHD_PARENT_MISSING'));
  const meta = await openVhd(child, { withoutParent: true });
  await assert.rejects(meta.read(new Uint8Array(512), 0), (e) => isVmhostError(e, 'VHD_PARENT_MISSING'));
});

test('only a VHD can be the parent; a grown child reads zeros past the parent', async () => {
  const parentFile = await fixedVhdOf(pattern(3 * MiB, 5), '/vms/base.vhd');
  const child = new MemoryFile('/vms/child.vhd');
  await createVhd(child, { type: 'Differencing', parent: { disk: await openVhd(parentFile.clone({ readOnly: true })), path: parentFile.name } });
  // The same bytes as a raw image (no VHD footer) are not a parent.
  const raw = MemoryFile.from(pattern(3 * MiB, 5), '/vms/base.raw');
  await assert.rejects(openVhd(child, { openParent: async () => raw }), (e) => isVmhostError(e, 'VHD_PARENT_MISMATCH') && e.context.parent === raw.name && e.context.path === child.name);
  const d = await openVhd(child, { openParent: async () => readOnlyView(parentFile) });
  const model = new DiskModel(3 * MiB, (() => { const m = new DiskModel(3 * MiB); m.write(pattern(3 * MiB, 5), 0); return m; })());
  await trace(d, model, 77, 60);
  assert.equal(await firstMismatch(d, (o, l) => model.read(o, l)), -1);
  await resizeVhd(d, 5 * MiB);
  model.size = 5 * MiB;
  const tail = new Uint8Array(2 * MiB);
  await d.read(tail, 3 * MiB);
  assert.ok(tail.every((x) => x === 0));
  await d.write(pattern(1024, 8), 4 * MiB);
  model.write(pattern(1024, 8), 4 * MiB);
  const again = await openVhd(child, { openParent: async () => readOnlyView(parentFile) });
  assert.equal(again.virtualSize, 5 * MiB);
  assert.equal(await firstMismatch(again, (o, l) => model.read(o, l)), -1);
});

test('crash at every write of a differencing disk: each sector reads as its old or a newer value', async () => {
  const { CrashFile } = await import('../../blockio/index.ts');
  const size = 4 * MiB;
  const parentFile = await fixedVhdOf(pattern(size, 1), '/vms/p.vhd');
  const parentModel = new DiskModel(size);
  parentModel.write(pattern(size, 1), 0);
  const childBase = new MemoryFile('/vms/c.vhd');
  await createVhd(childBase, { type: 'Differencing', parent: { disk: await openVhd(readOnlyView(parentFile)), path: parentFile.name }, blockSize: 256 * 1024 });
  const file = new CrashFile(childBase);
  const d = await openVhd(file, { openParent: async () => readOnlyView(parentFile) });
  // history[sector] = [{ at: op count after the write, bytes }]
  const history = new Map<number, { at: number; bytes: Uint8Array }[]>();
  const r = prng(3);
  for (let i = 0; i < 30; i++) {
    const n = 1 + Math.floor(r() * 4);
    const off = Math.floor(r() * (size / 512 - n)) * 512;
    const data = pattern(n * 512, 100 + i);
    await d.write(data, off);
    for (let s = 0; s < n; s++) {
      const list = history.get(off / 512 + s) ?? [];
      list.push({ at: file.opCount, bytes: data.slice(s * 512, s * 512 + 512) });
      history.set(off / 512 + s, list);
    }
    if (i % 6 === 5) await d.flush();
  }
  for (const cut of file.writeBoundaries()) {
    for (const v of [{ kind: 'flushed-only' as const }, { kind: 'random-subset' as const, seed: cut }, { kind: 'torn-last' as const, seed: cut }]) {
      const disk = await openVhd(file.stateAt(cut, v), { openParent: async () => readOnlyView(parentFile) });
      const durable = file.durablePrefix(cut);
      for (const [sector, list] of history) {
        const got = new Uint8Array(512);
        await disk.read(got, sector * 512);
        const before = list.filter((h) => h.at <= durable).pop()?.bytes ?? parentModel.read(sector * 512, 512);
        const allowed = [before, ...list.filter((h) => h.at > durable && h.at <= cut + 8).map((h) => h.bytes)];
        assert.ok(allowed.some((a) => Buffer.from(a).equals(got)), `cut ${cut} ${v.kind}: sector ${sector} reads neither its old nor a newer value`);
      }
    }
  }
});

test('real files: a chain moved to another directory still opens through the relative locator', async (t) => {
  const { NodeFile } = await import('../../blockio/index.ts');
  const { renameSync, mkdirSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tempDir } = await import('./test-support.ts');
  const { resolveLocatorPath } = await import('./index.ts');
  const { dir, cleanup } = tempDir('vhd1-chain');
  t.after(cleanup);
  mkdirSync(join(dir, 'a'));
  const basePath = join(dir, 'a', 'base.vhd'), childPath = join(dir, 'a', 'child.vhd');
  const base = await openVhd(await (async () => { const f = await NodeFile.open(basePath, { create: true }); await createVhd(f, { type: 'Dynamic', size: 8 * MiB }); return f; })());
  await base.write(pattern(4096, 1), 0);
  await createVhd(await NodeFile.open(childPath, { create: true }), { type: 'Differencing', parent: { disk: base, path: basePath } });
  await base.close();
  renameSync(join(dir, 'a'), join(dir, 'b'));
  const moved = join(dir, 'b', 'child.vhd');
  const tried: string[] = [];
  const openParent = async (paths: string[]) => {
    for (const p of paths.map((x) => resolveLocatorPath(moved, x))) {
      tried.push(p);
      try { return await NodeFile.open(p, { readOnly: true }); } catch { /* next candidate */ }
    }
    throw new Error('parent not found');
  };
  const child = await openVhd(await NodeFile.open(moved), { openParent });
  assert.equal(tried[0], join(dir, 'b', 'base.vhd'));
  const got = new Uint8Array(4096);
  await child.read(got, 0);
  assert.ok(Buffer.from(got).equals(pattern(4096, 1)));
  assert.equal((await describeVhd(child)).ParentPath, basePath, 'ParentPath is the recorded absolute locator');
  await child.close();
});
