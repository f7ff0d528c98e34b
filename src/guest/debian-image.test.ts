// Boots the real Debian 12 guest disk with plain QEMU on both generations and drives its
// agent (vmhost-agent.service): Generation 1 = i440fx + SeaBIOS + IDE through GRUB
// i386-pc; Generation 2 = q35 + OVMF secure boot (Microsoft keys) + virtio-scsi through
// shim → signed GRUB → signed kernel. The cached VHDX is the read-only backing file of a
// throwaway qcow2 overlay. Two systemd boots (tens of seconds each under TCG).
// Building the image needs root (mmdebstrap); skipped without root or tools unless CI=true.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureDebianImage } from './index.ts';
import { PlainQemu, skipUnless } from './image-test-support.ts';

const skip = skipUnless(['qemu-system-x86_64', 'qemu-img', 'mmdebstrap', 'dumpe2fs'], true);
const DEADLINE_MS = 300_000;

interface Manifest {
  kernelVersion: string;
  partitions: { number: number; startSector: number; sectors: number; partuuid: string }[];
}

test('Debian 12 guest disk', { skip, timeout: 60 * 60_000 }, async (t) => {
  const t0 = Date.now();
  const image = await ensureDebianImage();
  t.diagnostic(`image ready in ${Date.now() - t0} ms: ${image.disk}`);
  const manifest = JSON.parse(readFileSync(image.manifest, 'utf8')) as Manifest;

  await t.test('Generation 1: SeaBIOS, IDE, GRUB i386-pc', async (t) => {
    const vm = new PlainQemu({ firmware: { kind: 'bios' }, base: image.disk, bus: 'ide' });
    t.after(() => vm.close());
    const started = Date.now();
    await vm.agent.connect();
    const info = await vm.agent.waitReady(DEADLINE_MS);
    t.diagnostic(`agent ready after ${Date.now() - started} ms (guest uptime ${info.uptimeMs} ms)`);
    assert.equal(info.kernel, manifest.kernelVersion);
    assert.equal(info.hostname, 'debian');
    // The initramfs checked the root before mounting it (it carries fsck.ext4).
    assert.match(vm.serial, /clean, \d+\/\d+ files/);

    const kvp = await vm.agent.kvp();
    assert.match(kvp.OSName, /Debian GNU\/Linux 12/);
    // --wait: until start-up has finished (the agent starts before most units).
    const state = await vm.agent.exec('systemctl is-system-running --wait; systemctl --failed --no-legend', { timeoutMs: DEADLINE_MS });
    const [first = ''] = state.stdout.toString().split('\n');
    assert.match(first, /^(running|degraded)$/, state.stdout.toString());
    t.diagnostic(`system ${first} after ${Date.now() - started} ms`);

    const mounts = await vm.agent.exec('findmnt -no OPTIONS /; cat /proc/cmdline');
    assert.match(mounts.stdout.toString(), /^rw,/, 'root mounted rw');
    assert.match(mounts.stdout.toString(), /console=ttyS0/);
    const unit = await vm.agent.exec('systemctl is-enabled vmhost-agent.service; systemctl is-active vmhost-agent.service systemd-networkd.service');
    assert.deepEqual(unit.stdout.toString().trim().split('\n'), ['enabled', 'active', 'active']);

    // A clean shutdown through systemd must leave the root file system clean (no journal
    // replay, no fsck on the next boot). --no-block: the reply must leave before the agent stops.
    await vm.agent.exec('systemctl --no-block poweroff');
    assert.equal(await vm.waitExit(120_000), 0);
    const root = manifest.partitions.find((p) => p.number === 3)!;
    const raw = join(vm.dir, 'root.raw');
    const opts = `driver=raw,offset=${root.startSector * 512},size=${root.sectors * 512},file.driver=qcow2,file.file.driver=file,file.file.filename=${vm.overlay}`;
    const conv = spawnSync('qemu-img', ['convert', '-O', 'raw', '--image-opts', opts, raw], { encoding: 'utf8' });
    assert.equal(conv.status, 0, conv.stderr);
    const sb = spawnSync('dumpe2fs', ['-h', raw], { encoding: 'utf8' });
    assert.equal(sb.status, 0, sb.stderr);
    assert.match(sb.stdout, /^Filesystem state:\s+clean$/m);
    assert.doesNotMatch(sb.stdout, /needs_recovery/);
  });

  await t.test('Generation 2: OVMF secure boot, virtio-scsi, shim → signed GRUB', async (t) => {
    const vm = new PlainQemu({ firmware: { kind: 'uefi', secureBoot: true }, base: image.disk, bus: 'scsi' });
    t.after(() => vm.close());
    const started = Date.now();
    await vm.agent.connect();
    await vm.agent.waitReady(DEADLINE_MS);
    t.diagnostic(`agent ready after ${Date.now() - started} ms`);
    const sb = await vm.agent.exec('mokutil --sb-state');
    assert.match(sb.stdout.toString(), /SecureBoot enabled/, sb.stdout.toString() + sb.stderr.toString());
    const state = await vm.agent.exec('systemctl is-system-running --wait', { timeoutMs: DEADLINE_MS });
    assert.match(state.stdout.toString().trim(), /^(running|degraded)$/);
    t.diagnostic(`system ${state.stdout.toString().trim()} after ${Date.now() - started} ms`);
  });
});
