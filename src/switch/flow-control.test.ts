// Unicast flow control over real sockets: while a receiver does not read, the switch stops
// reading its sender (bounded holds) instead of dropping; once the receiver reads again,
// everything arrives, nothing was dropped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualSwitch } from './index.ts';
import { encodeFrame } from './framing.ts';
import { TestNic, eth, mac, until } from './test-support.ts';

test('a receiver that stops reading holds its sender; no frame is lost', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-fc-'));
  const sw = await VirtualSwitch.create({ name: 'fc', type: 'Private', socketDir: dir });
  const nics: TestNic[] = [];
  try {
    const a = await TestNic.connect((await sw.addPort({ id: 'a', policy: { mac: mac(1) } })).socketPath);
    const b = await TestNic.connect((await sw.addPort({ id: 'b', policy: { mac: mac(2) } })).socketPath);
    nics.push(a, b);
    b.send(eth(mac(2), mac(1)));
    await a.waitFrames(1);
    b.sock.pause();
    const rec = encodeFrame(eth(mac(1), mac(2), { payload: new Uint8Array(1500) }));
    const total = 8000; // ~12 MB, three times the switch's per-port drop threshold
    const chunk = Buffer.concat(Array.from({ length: 100 }, () => rec));
    for (let i = 0; i < total / 100; i++) a.sock.write(chunk);
    await new Promise((r) => setTimeout(r, 600));
    const held = sw.portStats('a').rxFrames;
    assert.ok(held < total / 2, `switch read only part of the burst while b was not reading (${held} of ${total})`);
    assert.deepEqual(sw.portStats('b').drops, {});
    b.sock.resume();
    await until(() => b.frames.length >= total, 20_000);
    assert.equal(b.frames.length, total);
    assert.deepEqual(sw.stats().drops, {});
  } finally {
    for (const n of nics) n.close();
    await sw.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
