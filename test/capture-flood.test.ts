// A guest flooding a capture (issue 16 item 7, acceptance with a real daemon and guest): the
// guest pings a neighbour that exists only in its ARP table with 64 KiB packets (~44 frames
// each, flooded by the switch as unknown unicast) until more than the cap has passed; the
// capture stops at its 50 MB cap with a SWITCH_CAPTURE_LIMIT event, the file ends within one
// record of the cap, tshark reads it, and the daemon and the guest go on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDaemon, waitFor } from './support/daemon.ts';
import { cliTools } from './support/cli-tools.ts';

const CAP = 50 * 1024 * 1024;

test('a guest flooding a 50 MB capture: it stops at the cap with an event, the daemon and guest stay up', { timeout: 300_000 }, async () => {
  const haveTshark = spawnSync('tshark', ['--version']).status === 0;
  assert.ok(haveTshark || process.env.CI !== 'true', 'tshark is required under CI');
  const out = await mkdtemp(join(tmpdir(), 'vmhost-flood-'));
  let d: TestDaemon | undefined;
  try {
    d = await TestDaemon.start();
    const t = cliTools(d);
    await t.ok('New-VMSwitch', 'flood', '-SwitchType', 'Private');
    await t.ok('New-VM', 'f1', '-MemoryStartupBytes', '256MB', '-SwitchName', 'flood');
    await t.ok('Start-VM', 'f1');
    await t.heartbeat('f1');
    const file = join(out, 'flood.pcap');
    await t.ok('Start-VMSwitchCapture', 'flood', '-Path', file, '-MaxBytes', String(CAP));
    assert.equal((await t.sh('f1', 'ip addr add 10.77.0.1/24 dev eth0 && ip link set eth0 up && arp -s 10.77.0.2 02:00:00:00:77:02')).code, 0);
    // Rounds of 200 pings of 64 KiB (~13 MB of frames each) until the cap event appears.
    const limitEvent = async () => ((await d!.api('GET', '/api/v1/events')).json as { Code?: string; Message: string }[])
      .find((e) => /stopped at its size limit/.test(e.Message));
    const t0 = Date.now();
    const ev = await waitFor('the capture limit event', 240_000, async () => {
      await t.sh('f1', 'ping -q -c 200 -i 0.01 -s 65000 -W 1 10.77.0.2 >/dev/null 2>&1; true');
      return limitEvent();
    });
    const size = (await stat(file)).size;
    process.stdout.write(`# guest flood: capture stopped after ${Date.now() - t0} ms at ${size} bytes: ${ev.Message}\n`);
    assert.ok(size <= CAP && size > CAP - 70_000, `the file ends within one record of the cap (${size})`);
    assert.match(ev.Message, new RegExp(`${size} bytes in ${file.replaceAll('.', '\\.')}`));
    // A new capture may start (the old one is gone); the daemon answers and the guest is alive.
    await t.ok('Start-VMSwitchCapture', 'flood', '-Path', join(out, 'again.pcap'), '-MaxBytes', '1MB');
    await t.ok('Stop-VMSwitchCapture', 'flood');
    assert.equal((await t.sh('f1', 'echo alive')).out.trim(), 'alive');
    assert.equal((await t.json<{ State: string }>('Get-VM', 'f1')).State, 'Running');
    if (haveTshark) {
      const r = spawnSync('tshark', ['-r', file, '-T', 'fields', '-e', 'frame.number'], { encoding: 'utf8', maxBuffer: 64 << 20 });
      assert.equal(r.status, 0, r.stderr);
      assert.match(ev.Message, new RegExp(`: ${r.stdout.trim().split('\n').length} frames`), 'tshark reads every frame the event counts');
    }
    await t.ok('Stop-VM', 'f1', '-TurnOff');
  } finally {
    await d?.stop();
    await rm(out, { recursive: true, force: true });
  }
});
