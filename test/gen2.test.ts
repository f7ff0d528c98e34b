// Generation 2: q35 + OVMF UEFI, no legacy devices; the test guest boots through the
// firmware (direct kernel boot: OVMF loads the kernel and initrd QEMU hands it).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { TestDaemon, waitFor } from './support/daemon.ts';

describe('generation 2 VM', () => {
  let d: TestDaemon;
  before(async () => { d = await TestDaemon.start(); });
  after(async () => { await d?.stop(); });

  test('boots the test guest through OVMF and answers the agent', async () => {
    assert.equal((await d.cli('New-VM', '-Name', 'g2', '-Generation', '2', '-MemoryStartupBytes', '256MB')).code, 0);
    const t0 = Date.now();
    const r = await d.cli('Start-VM', 'g2');
    assert.equal(r.code, 0, r.stderr);
    await waitFor('g2 heartbeat', 60_000, async () => {
      const v = (await d.api('GET', '/api/v1/vms/g2')).json as { Heartbeat: string };
      return v.Heartbeat === 'OK';
    });
    console.log(`gen 2 boot to heartbeat: ${Date.now() - t0} ms`);
    const pid = ((await d.api('GET', '/api/v1/vms/g2')).json as { ProcessId: number }).ProcessId;
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    assert.ok(cmdline.some((a) => a.includes('q35')), 'q35 machine');
    assert.ok(cmdline.some((a) => /OVMF_CODE/.test(a)), 'OVMF firmware');
    // The serial port stays (it is the console the admin reads), as COM ports do on Hyper-V gen 2.
    assert.ok(!cmdline.some((a) => /\bide-|piix|e1000|rtl8139|\bVGA\b|i440FX|floppy/i.test(a)), 'no legacy devices');
    const efi = await d.cli('Invoke-Command', '-VMName', 'g2', '-ScriptBlock', 'test -d /sys/firmware/efi && echo uefi');
    assert.equal(efi.stdout.trim(), 'uefi', 'the guest sees UEFI firmware');
    assert.equal((await d.cli('Stop-VM', 'g2', '-TurnOff')).code, 0);
  });
});
