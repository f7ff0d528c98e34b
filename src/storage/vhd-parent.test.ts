// A VHD's parent is chosen by whoever made the image (issue 16, item 3): crafted children
// whose locators lead to a raw image, a VHDX, a VHD of another identity, a FIFO, back to
// themselves, or down a chain deeper than a VHDX chain may be, are refused by openDiskFile
// with a typed error naming the child and the parent. Images are made with our engine and
// then byte-patched, as an attacker would.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NodeFile } from '../blockio/index.ts';
import { isVmhostError, type VmhostError } from '../common/errors.ts';
import { createVhdx } from '../vhd/index.ts';
import { createVhd, openVhd } from '../vhd/vhd1/index.ts';
import { openDiskFile } from './index.ts';
import { tempDir, pattern } from './test-support.ts';

const MiB = 1 << 20;
const SIZE = 4 * MiB;
const tmp = tempDir('vhd-parent-');
after(() => tmp.cleanup());
let n = 0;
const newDir = () => {
  const d = join(tmp.dir, `case${n++}`);
  mkdirSync(d);
  return d;
};

async function makeBase(path: string, type: 'Dynamic' | 'Fixed' = 'Dynamic'): Promise<void> {
  const f = await NodeFile.open(path, { create: true, overwrite: true });
  await createVhd(f, { type, size: SIZE });
  const d = await openVhd(f);
  await d.write(pattern(MiB, 1), 0);
  await d.close();
}

async function makeChild(path: string, parentPath: string): Promise<void> {
  const parent = await openVhd(await NodeFile.open(parentPath, { readOnly: true }), { withoutParent: true });
  const f = await NodeFile.open(path, { create: true, overwrite: true });
  await createVhd(f, { type: 'Differencing', parent: { disk: parent, path: parentPath } });
  await f.close();
  await parent.close();
}

// ---- byte patches (VHD footer and dynamic header: big-endian, one's-complement checksums) ----
function vhdChecksum(b: Buffer, at: number): void {
  b.writeUInt32BE(0, at);
  let sum = 0;
  for (const x of b) sum += x;
  b.writeUInt32BE(~sum >>> 0, at);
}

/** Footer fields of the file at `path`: unique id and time stamp. */
function identity(path: string): { uniqueId: Buffer; timeStamp: number } {
  const b = readFileSync(path);
  const footer = b.subarray(b.length - 512);
  return { uniqueId: Buffer.from(footer.subarray(68, 84)), timeStamp: footer.readUInt32BE(24) };
}

/** Rewrite the parent identity a differencing child records in its dynamic header. */
function setParentIdentity(path: string, id: { uniqueId: Buffer; timeStamp: number }): void {
  const b = readFileSync(path);
  const at = Number(b.subarray(b.length - 512).readBigUInt64BE(16));
  const h = Buffer.from(b.subarray(at, at + 1024));
  id.uniqueId.copy(h, 40);
  h.writeUInt32BE(id.timeStamp, 56);
  vhdChecksum(h, 36);
  h.copy(b, at);
  writeFileSync(path, b);
}

/** Change a VHD's footer time stamp (both copies), as touching it with another tool would. */
function setTimeStamp(path: string, timeStamp: number): void {
  const b = readFileSync(path);
  for (const at of [0, b.length - 512]) {
    const f = Buffer.from(b.subarray(at, at + 512));
    if (f.toString('latin1', 0, 8) !== 'conectix') continue;
    f.writeUInt32BE(timeStamp, 24);
    vhdChecksum(f, 64);
    f.copy(b, at);
  }
  writeFileSync(path, b);
}

function refused(code: string, child: string, parent?: string) {
  return (e: unknown): boolean => {
    assert.ok(isVmhostError(e), `typed error expected, got ${String(e)}`);
    const v = e as VmhostError;
    assert.equal(v.code, code, v.message);
    assert.equal(v.context.path, child, 'the error names the child');
    if (parent !== undefined) assert.equal(v.context.parent, parent, 'the error names the parent');
    return true;
  };
}

test('VHD child whose locator leads to a raw image (another host disk) is refused, naming both files', async () => {
  const dir = newDir();
  mkdirSync(join(dir, 'tenant'));
  mkdirSync(join(dir, 'other'));
  const secret = join(dir, 'other', 'disk.img');
  const child = join(dir, 'tenant', 'child.vhd');
  // Made against a VHD at the victim's path, then the path holds the victim's raw disk:
  // exactly what a hand-written locator (absolute path or ../) reaches.
  await makeBase(secret);
  await makeChild(child, secret);
  writeFileSync(secret, pattern(SIZE, 99));
  await assert.rejects(openDiskFile(child, { readOnly: true }), refused('VHD_PARENT_MISMATCH', child, secret));
});

test('VHD child whose parent is a VHDX is refused, naming both files', async () => {
  const dir = newDir();
  const parent = join(dir, 'base.vhdx');
  const child = join(dir, 'child.vhd');
  await makeBase(parent);
  await makeChild(child, parent);
  const f = await NodeFile.open(parent, { create: true, overwrite: true });
  await createVhdx(f, { type: 'Dynamic', virtualSize: SIZE, blockSize: MiB });
  await f.close();
  await assert.rejects(openDiskFile(child, { readOnly: true }), refused('VHD_PARENT_MISMATCH', child, parent));
});

test('VHD parent with another unique id or time stamp is refused, naming both files', async () => {
  const dir = newDir();
  const parent = join(dir, 'base.vhd');
  const child = join(dir, 'child.vhd');
  await makeBase(parent);
  await makeChild(child, parent);
  // The right one opens and reads through.
  const ok = await openDiskFile(child, { readOnly: true });
  const got = new Uint8Array(4096);
  await ok.read(got, 0);
  assert.deepEqual(got, pattern(MiB, 1).subarray(0, 4096));
  await ok.close();
  const original = readFileSync(parent);
  setTimeStamp(parent, identity(parent).timeStamp + 1);
  await assert.rejects(openDiskFile(child, { readOnly: true }), refused('VHD_PARENT_MISMATCH', child, parent));
  writeFileSync(parent, original);
  await makeBase(parent); // same path, same size, new unique id
  await assert.rejects(openDiskFile(child, { readOnly: true }), refused('VHD_PARENT_MISMATCH', child, parent));
});

test('VHD child whose locator leads to a FIFO is refused without blocking', async () => {
  const dir = newDir();
  const parent = join(dir, 'base.vhd');
  const child = join(dir, 'child.vhd');
  await makeBase(parent);
  await makeChild(child, parent);
  rmSync(parent);
  execFileSync('mkfifo', [parent]);
  await assert.rejects(openDiskFile(child, { readOnly: true }), (e: unknown) => isVmhostError(e, 'STORAGE_NOT_A_FILE') && e.context.path === parent);
});

test('VHD whose locator and recorded identity name itself is a cycle', async () => {
  const dir = newDir();
  const base = join(dir, 'base.vhd');
  const child = join(dir, 'child.vhd');
  await makeBase(base);
  await makeChild(child, base);
  // The child takes the parent's place: its locators now lead to itself; then it records
  // its own identity as its parent's.
  renameSync(child, base);
  setParentIdentity(base, identity(base));
  await assert.rejects(openDiskFile(base, { readOnly: true }), refused('VHD_CHAIN_CYCLE', base, base));
});

test('VHD chain a → b → a is a cycle', async () => {
  const dir = newDir();
  const base = join(dir, 'base.vhd');
  const a = join(dir, 'a.vhd');
  const b = join(dir, 'b.vhd');
  await makeBase(base);
  await makeChild(a, base);
  await makeChild(b, a);
  // b takes base's place (a's locators lead to it) and a records b's identity.
  renameSync(b, base);
  setParentIdentity(a, identity(base));
  await assert.rejects(openDiskFile(a, { readOnly: true }), refused('VHD_CHAIN_CYCLE', base, a));
});

test('VHD chains have the VHDX depth limit: 64 parents below the leaf open, 65 are refused', async () => {
  const dir = newDir();
  let prev = join(dir, 'd0.vhd');
  await makeBase(prev);
  for (let i = 1; i <= 65; i++) {
    const next = join(dir, `d${i}.vhd`);
    await makeChild(next, prev);
    prev = next;
  }
  const deepest = await openDiskFile(join(dir, 'd64.vhd'), { readOnly: true });
  const got = new Uint8Array(4096);
  await deepest.read(got, 0);
  assert.deepEqual(got, pattern(MiB, 1).subarray(0, 4096));
  await deepest.close();
  await assert.rejects(openDiskFile(join(dir, 'd65.vhd'), { readOnly: true }), refused('VHD_CHAIN_TOO_DEEP', join(dir, 'd1.vhd')));
});
