// Unit tests of the on-disk structures: footer and header round trips and checksums,
// CHS geometry, the creator size rule, locator paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeFooter, encodeFooter, DiskTypeCode, type Footer } from './footer.ts';
import { decodeDynamicHeader, encodeDynamicHeader } from './dynamic-header.ts';
import { geometryForSize, geometrySize, virtualSizeOf } from './geometry.ts';
import { relativePath, decodeLocatorPath, Platform, encodeUtf16le, fileUrl } from './parent-locator.ts';
import { bitmapBytes, bitRuns, setBits } from './bitmap.ts';

const footer: Footer = {
  features: 2, formatVersion: 0x10000, dataOffset: 512, timeStamp: 12345, creatorApp: 'win ', creatorVersion: 0x60003,
  creatorHostOs: 0x5769326b, originalSize: 127 * 1024 ** 3, currentSize: 127 * 1024 ** 3,
  geometry: { cylinders: 65278, heads: 16, sectorsPerTrack: 255 }, diskType: DiskTypeCode.Dynamic, checksum: 0,
  uniqueId: Uint8Array.from({ length: 16 }, (_, i) => i), savedState: 0,
};

test('footer round trip and checksum', () => {
  const bytes = encodeFooter(footer);
  const d = decodeFooter(bytes)!;
  assert.ok(d.checksumOk);
  assert.deepEqual({ ...d.footer, checksum: 0 }, footer);
  bytes[100] = 1;
  assert.equal(decodeFooter(bytes)!.checksumOk, false);
  bytes[0] = 0;
  assert.equal(decodeFooter(bytes), null);
  const fixed = decodeFooter(encodeFooter({ ...footer, dataOffset: null }))!;
  assert.equal(fixed.footer.dataOffset, null);
});

test('dynamic header round trip with locators', () => {
  const h = {
    tableOffset: 1536, headerVersion: 0x10000, maxTableEntries: 65024, blockSize: 2 << 20, checksum: 0,
    parentUniqueId: new Uint8Array(16).fill(7), parentTimeStamp: 99, parentUnicodeName: 'parent.vhd',
    locators: [{ platformCode: Platform.W2ku, platformDataSpace: 512, platformDataLength: 20, platformDataOffset: 262144 }],
  };
  const d = decodeDynamicHeader(encodeDynamicHeader(h))!;
  assert.ok(d.checksumOk);
  assert.equal(d.header.parentUnicodeName, 'parent.vhd');
  assert.deepEqual(d.header.locators[0], h.locators[0]);
  assert.equal(d.header.locators.length, 8);
  assert.equal(d.header.locators[1]!.platformCode, 0);
});

test('CHS geometry follows the specification', () => {
  // The Hyper-V sample's 127 GiB footer geometry.
  assert.deepEqual(geometryForSize(127 * 1024 ** 3), { cylinders: 65278, heads: 16, sectorsPerTrack: 255 });
  // Small disks use 17 sectors per track and at least 4 heads.
  assert.deepEqual(geometryForSize(10 * 1024 * 1024), { cylinders: 301, heads: 4, sectorsPerTrack: 17 });
  // Beyond the CHS maximum the geometry saturates.
  assert.deepEqual(geometryForSize(2040 * 1024 ** 3), { cylinders: 65535, heads: 16, sectorsPerTrack: 255 });
  for (const mb of [1, 3, 64, 100, 1000, 4000, 32000]) assert.ok(geometrySize(geometryForSize(mb << 20)) <= mb << 20);
});

test('size rule: vpc/qemu use CHS unless the geometry is the maximum; others use current size', () => {
  assert.equal(virtualSizeOf(footer), 127 * 1024 ** 3);
  assert.equal(virtualSizeOf({ ...footer, creatorApp: 'vpc ' }), 65278 * 16 * 255 * 512);
  assert.equal(virtualSizeOf({ ...footer, creatorApp: 'qemu' }), 65278 * 16 * 255 * 512);
  assert.equal(virtualSizeOf({ ...footer, creatorApp: 'qem2' }), 127 * 1024 ** 3);
  assert.equal(virtualSizeOf({ ...footer, creatorApp: 'vpc ', geometry: { cylinders: 65535, heads: 16, sectorsPerTrack: 255 } }), 127 * 1024 ** 3);
});

test('parent locator paths', () => {
  assert.equal(relativePath('/a/b/child.vhd', '/a/b/parent.vhd'), './parent.vhd');
  assert.equal(relativePath('/a/b/child.vhd', '/a/c/parent.vhd'), '../c/parent.vhd');
  assert.equal(relativePath('/x/child.vhd', '/parent.vhd'), '../parent.vhd');
  assert.equal(relativePath('child.vhd', '/p.vhd'), null);
  const e = { platformCode: Platform.W2ku, platformDataSpace: 512, platformDataLength: 0, platformDataOffset: 0 };
  assert.equal(decodeLocatorPath(e, encodeUtf16le('C:\\vms\\päth.vhd')), 'C:\\vms\\päth.vhd');
  assert.equal(decodeLocatorPath({ ...e, platformCode: Platform.MacX }, new TextEncoder().encode(fileUrl('/tmp/a b.vhd'))), '/tmp/a b.vhd');
  assert.equal(decodeLocatorPath({ ...e, platformCode: Platform.Mac }, new Uint8Array(10)), null);
});

test('sector bitmap', () => {
  assert.equal(bitmapBytes(2 << 20), 512);
  assert.equal(bitmapBytes(4096), 512);
  assert.equal(bitmapBytes(8 << 20), 2048);
  const bm = new Uint8Array(512);
  assert.ok(setBits(bm, 3, 10));
  assert.ok(!setBits(bm, 5, 2));
  assert.equal(bm[0], 0b00011111);
  assert.deepEqual([...bitRuns(bm, 0, 20)], [{ start: 0, length: 3, set: false }, { start: 3, length: 10, set: true }, { start: 13, length: 7, set: false }]);
});

test('locator paths resolve against the child directory', async () => {
  const { resolveLocatorPath } = await import('./index.ts');
  assert.equal(resolveLocatorPath('/vms/sub/child.vhd', '.\\base.vhd'), '/vms/sub/base.vhd');
  assert.equal(resolveLocatorPath('/vms/sub/child.vhd', '../base.vhd'), '/vms/base.vhd');
  assert.equal(resolveLocatorPath('/vms/sub/child.vhd', '/abs/base.vhd'), '/abs/base.vhd');
  assert.equal(resolveLocatorPath('/vms/child.vhd', 'C:\\VMs\\base.vhd'), 'C:/VMs/base.vhd');
  assert.equal(resolveLocatorPath('child.vhd', './base.vhd'), './base.vhd');
});
