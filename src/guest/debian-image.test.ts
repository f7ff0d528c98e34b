// The real Debian 12 guest disk as built (no boot here: test/debian-guest.test.ts boots it
// under vmhost on both generations, and bench/boot.ts with plain QEMU): qemu-img reads it as a
// consistent VHDX, the cache keeps it read-only, and the GPT our engine reads back is the one
// the manifest describes (the kernel command line finds the root by its PARTUUID).
// Building the image needs root (mmdebstrap); skipped without root or tools unless CI=true.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { openDiskFile } from '../storage/index.ts';
import { ensureDebianImage } from './index.ts';
import { skipUnless } from './image-test-support.ts';

const skip = skipUnless(['qemu-img', 'mmdebstrap', 'mkfs.ext4', 'mformat'], true);

interface Manifest {
  os: string;
  kernelCommandLine: string;
  disk: { virtualSize: number };
  partitions: { number: number; startSector: number; sectors: number; partuuid: string }[];
  packages: Record<string, string>;
  /** The boot chain's packages, unpacked onto the ESP (not installed in the guest). */
  bootPackages: Record<string, string>;
}

/** A GPT GUID as text: the first three fields are little-endian on disk. */
function guidText(b: Uint8Array): string {
  const h = (bytes: Iterable<number>) => [...bytes].map((x) => x.toString(16).padStart(2, '0')).join('');
  return [h([...b.subarray(0, 4)].reverse()), h([...b.subarray(4, 6)].reverse()), h([...b.subarray(6, 8)].reverse()), h(b.subarray(8, 10)), h(b.subarray(10, 16))].join('-');
}

test('Debian 12 guest disk: a consistent VHDX whose GPT is the manifest\'s', { skip, timeout: 60 * 60_000 }, async (t) => {
  const t0 = Date.now();
  const image = await ensureDebianImage();
  t.diagnostic(`image ready in ${Date.now() - t0} ms: ${image.disk}`);
  const manifest = JSON.parse(readFileSync(image.manifest, 'utf8')) as Manifest;
  assert.match(manifest.os, /^Debian GNU\/Linux 12/);
  for (const p of ['systemd', 'udev', 'mokutil', 'linux-image-cloud-amd64']) assert.ok(p in manifest.packages, `${p} installed`);
  for (const p of ['shim-signed', 'grub-efi-amd64-signed']) assert.ok(p in manifest.bootPackages, `${p} on the ESP`);
  assert.equal(statSync(image.disk).mode & 0o222, 0, 'the cached disk is read-only: VMs use it as a parent');

  const check = spawnSync('qemu-img', ['check', '-f', 'vhdx', image.disk], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stdout + check.stderr);
  const info = JSON.parse(spawnSync('qemu-img', ['info', '--output=json', '-f', 'vhdx', image.disk], { encoding: 'utf8' }).stdout) as { 'virtual-size': number };
  assert.equal(info['virtual-size'], manifest.disk.virtualSize);

  const disk = await openDiskFile(image.disk, { readOnly: true });
  try {
    const lba = new Uint8Array(512 * 3);
    await disk.read(lba, 0);
    assert.deepEqual([lba[510], lba[511]], [0x55, 0xaa], 'protective MBR');
    assert.equal(Buffer.from(lba.subarray(512, 520)).toString('latin1'), 'EFI PART');
    const entries = new DataView(lba.buffer, 1024);
    for (const p of manifest.partitions) {
      const at = (p.number - 1) * 128;
      const first = Number(entries.getBigUint64(at + 32, true)), last = Number(entries.getBigUint64(at + 40, true));
      assert.deepEqual([guidText(lba.subarray(1024 + at + 16, 1024 + at + 32)), first, last - first + 1], [p.partuuid, p.startSector, p.sectors], `partition ${p.number}`);
    }
    const root = manifest.partitions.find((p) => p.number === 3)!;
    assert.match(manifest.kernelCommandLine, new RegExp(`root=PARTUUID=${root.partuuid}`));
  } finally {
    await disk.close();
  }
});
