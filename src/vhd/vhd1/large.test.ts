// The 2040 GiB limit: the largest dynamic VHD is created, its last sector written and read
// back, and the file stays small; one sector more is refused with VHD_TOO_LARGE.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryFile } from '../../blockio/index.ts';
import { isVmhostError } from '../../common/errors.ts';
import { createVhd, openVhd, describeVhd, checkVhd } from './index.ts';
import { pattern, sameBytes } from './test-support.ts';

const GiB = 1024 ** 3;
const MAX = 2040 * GiB;

test('2040 GiB dynamic: create, write the last sector, read back, small file', async () => {
  const file = new MemoryFile('/big/max.vhd');
  await createVhd(file, { type: 'Dynamic', size: MAX });
  let d = await openVhd(file);
  assert.equal(d.virtualSize, MAX);
  const last = pattern(512, 2040);
  await d.write(last, MAX - 512);
  await d.flush();
  d = await openVhd(file);
  const got = new Uint8Array(1024);
  await d.read(got, MAX - 1024);
  assert.ok(got.subarray(0, 512).every((b) => b === 0));
  assert.ok(sameBytes(got.subarray(512), last));
  // 1044480 BAT entries (4 MiB) + one 2 MiB block + header/footers.
  const size = await file.size();
  assert.ok(size < 7 * 1024 * 1024, `file is ${size} bytes`);
  assert.deepEqual(await checkVhd(file), []);
  assert.equal((await describeVhd(d)).Size, MAX);
});

test('2040 GiB + 1 sector is refused, for create and for open', async () => {
  await assert.rejects(createVhd(new MemoryFile(), { type: 'Dynamic', size: MAX + 512 }),
    (e) => isVmhostError(e, 'VHD_TOO_LARGE') && /2040 GiB/.test(e.message));
  await assert.rejects(createVhd(new MemoryFile(), { type: 'Fixed', size: MAX + 512 }), (e) => isVmhostError(e, 'VHD_TOO_LARGE'));
  // A file claiming more than 2040 GiB does not open.
  const file = new MemoryFile('/big/fake.vhd');
  await createVhd(file, { type: 'Dynamic', size: 8 * 1024 * 1024 });
  const { encodeFooter, decodeFooter } = await import('./footer.ts');
  const raw = new Uint8Array(512);
  file.readSync(raw, (await file.size()) - 512);
  const forged = encodeFooter({ ...decodeFooter(raw)!.footer, currentSize: MAX + 512 });
  file.writeSync(forged, 0);
  file.writeSync(forged, (await file.size()) - 512);
  await assert.rejects(openVhd(file), (e) => isVmhostError(e, 'VHD_TOO_LARGE'));
});
