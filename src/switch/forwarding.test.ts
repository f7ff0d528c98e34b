// Port I/O over real unix sockets and default forwarding: the stream framing (partial
// reads, several frames per chunk, corrupt lengths), learning, flooding, never back out of
// the ingress port, ageing, a port outliving its peer, malformed and giant frames.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualSwitch, defaultPolicy } from './index.ts';
import { FrameDecoder, encodeFrame } from './framing.ts';
import { BCAST, Bench, TestNic, eth, mac, until } from './test-support.ts';

test('FrameDecoder: byte-at-a-time, several frames per chunk, corrupt length', () => {
  const frames = [eth(mac(1), mac(2)), eth(mac(3), BCAST, { payload: new Uint8Array(1000) }), new Uint8Array(0)];
  const wire = Buffer.concat(frames.map((f) => encodeFrame(f)));
  for (const step of [1, 3, 7, wire.length]) {
    const d = new FrameDecoder();
    const out: Buffer[] = [];
    for (let i = 0; i < wire.length; i += step) assert.ok(d.push(wire.subarray(i, i + step), (f) => out.push(Buffer.from(f))));
    assert.deepEqual(out.map((f) => f.length), frames.map((f) => f.length));
    assert.deepEqual(out[1], Buffer.from(frames[1]!));
    assert.equal(d.buffered, 0);
  }
  const d = new FrameDecoder();
  const bad = Buffer.alloc(8);
  bad.writeUInt32BE(0x7fffffff, 0);
  assert.equal(d.push(bad, () => assert.fail('no frame')), false);
});

test('sockets: learning, flooding, unicast, reconnect, corrupt stream, malformed and giant frames', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-switch-'));
  const sw = await VirtualSwitch.create({ name: 's', type: 'Private', socketDir: dir, maxFrameBytes: 1518 });
  const nics: TestNic[] = [];
  try {
    const paths = [];
    for (const id of ['a', 'b', 'c']) paths.push((await sw.addPort({ id, policy: { guards: { macAddressSpoofing: 'On' } } })).socketPath);
    assert.equal(paths[0], join(dir, 'a.sock'));
    const [a, b, c] = await Promise.all(paths.map((p) => TestNic.connect(p)));
    nics.push(a!, b!, c!);
    await until(() => sw.listPorts().every((p) => p.connected));

    // Broadcast from a floods to b and c, never back to a.
    a!.send(eth(mac(1), BCAST));
    await b!.waitFrames(1); await c!.waitFrames(1);
    // b answers a by unicast: a has been learned, so only a gets it.
    b!.send(eth(mac(2), mac(1)));
    await a!.waitFrames(1);
    // Unknown unicast floods.
    c!.send(eth(mac(3), mac(9)));
    await a!.waitFrames(2); await b!.waitFrames(2);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(a!.frames.length, 2);
    assert.equal(b!.frames.length, 2);
    assert.equal(c!.frames.length, 1);
    // Two frames in one write, the second split across writes.
    const two = Buffer.concat([encodeFrame(eth(mac(1), mac(2))), encodeFrame(eth(mac(1), mac(2), { payload: new Uint8Array(200) }))]);
    a!.sendRaw(two.subarray(0, 70)); await new Promise((r) => setTimeout(r, 10)); a!.sendRaw(two.subarray(70));
    await b!.waitFrames(4);
    assert.equal(b!.frames[3]!.length, 214);

    // Malformed: truncated Ethernet, truncated IPv4; giant: over maxFrameBytes. Dropped, counted.
    a!.send(new Uint8Array(10));
    a!.send(eth(mac(1), mac(2), { ethertype: 0x0800, payload: new Uint8Array([0x45, 0, 0, 100]) }));
    a!.send(eth(mac(1), mac(2), { payload: new Uint8Array(3000) }));
    await until(() => Object.values(sw.portStats('a').drops).reduce((x, y) => x + y, 0) >= 3);
    assert.deepEqual(sw.portStats('a').drops, { 'truncated-ethernet': 1, 'truncated-ipv4': 1, 'giant-frame': 1 });

    // A corrupt record length cuts the connection; the port accepts a new peer (QEMU restarted).
    const bad = Buffer.alloc(4); bad.writeUInt32BE(0x100000, 0);
    c!.sendRaw(bad);
    await until(() => c!.closed);
    assert.equal(sw.portStats('c').drops['stream-corrupt'], 1);
    const c2 = await TestNic.connect(paths[2]!);
    nics.push(c2);
    await until(() => sw.port('c').connected);
    a!.send(eth(mac(1), BCAST));
    await c2.waitFrames(1);

    // A second connection to a port replaces the first.
    const b2 = await TestNic.connect(paths[1]!);
    nics.push(b2);
    await until(() => b!.closed);
    a!.send(eth(mac(1), BCAST));
    await b2.waitFrames(1);

    // A port whose VM is off is no flood candidate: nothing counted against it.
    await sw.addPort({ id: 'off' });
    a!.send(eth(mac(1), BCAST));
    await c2.waitFrames(2);
    assert.deepEqual(sw.portStats('off').drops, {});
    const st = sw.stats();
    assert.ok(st.rxFrames >= 9 && st.txFrames >= 8, JSON.stringify(st));
    assert.equal(st.drops['giant-frame'], 1);
  } finally {
    for (const n of nics) n.close();
    await sw.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('learning is per VLAN, ages out, and a moved MAC follows its new port', async () => {
  const b = await Bench.create({ macAgeingSeconds: 300 });
  for (const p of ['a', 'b', 'c']) await b.port(p, { guards: { macAddressSpoofing: 'On' } });
  b.send('a', eth(mac(1), BCAST));
  b.clear();
  b.send('b', eth(mac(2), mac(1)));
  assert.deepEqual(b.receivers(), ['a']);
  b.clock.advance(301_000);
  b.clear();
  b.send('b', eth(mac(2), mac(1)));
  assert.deepEqual(b.receivers(), ['a', 'c'], 'aged out: flooded');
  // mac(1) moves to c.
  b.send('c', eth(mac(1), BCAST));
  b.clear();
  b.send('b', eth(mac(2), mac(1)));
  assert.deepEqual(b.receivers(), ['c']);
  // A frame to a MAC behind its own ingress port goes nowhere.
  b.clear();
  b.send('c', eth(mac(1), mac(1)));
  assert.deepEqual(b.receivers(), []);
  assert.ok(b.sw.stats().macEntries >= 2);
  await b.sw.close();
});

test('recreated from its persisted config: same socket paths, policy and extensions', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-switch-'));
  try {
    const sw = await VirtualSwitch.create({ name: 'p', type: 'Private', socketDir: dir, macAgeingSeconds: 60 });
    await sw.addPort({ id: 'vm1', policy: { mac: mac(1), vlan: { mode: 'Access', vlanId: 7 } } });
    sw.addExtension('vmhost.flow-sampler', { config: { sampleRate: 8 } });
    const cfg = JSON.parse(JSON.stringify(sw.toConfig()));
    await sw.close();
    const again = await VirtualSwitch.fromConfig(cfg);
    assert.deepEqual(again.toConfig(), cfg);
    const nic = await TestNic.connect(join(dir, 'vm1.sock'));
    await until(() => again.port('vm1').connected);
    // A persisted policy replaces the whole policy (fields it lacks go back to defaults).
    assert.deepEqual(again.replacePortPolicy('vm1', { ...defaultPolicy(), ipAddresses: ['10.0.0.1'] }), { ...defaultPolicy(), ipAddresses: ['10.0.0.1'] });
    nic.close();
    await again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('socket batching: records forwarded as slices of the read, popped priority tags copied, order and bytes kept across split reads and destinations', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-switch-'));
  const sw = await VirtualSwitch.create({ name: 'batch', type: 'Private', socketDir: dir });
  const nics: TestNic[] = [];
  try {
    const paths = [];
    for (const [n, id] of ['a', 'b', 'c'].entries()) paths.push((await sw.addPort({ id, policy: { mac: mac(n + 1) } })).socketPath);
    const [a, b, c] = await Promise.all(paths.map((p) => TestNic.connect(p)));
    nics.push(a!, b!, c!);
    await until(() => sw.listPorts().every((p) => p.connected));
    b!.send(eth(mac(2), mac(1))); // b and c learned: a's frames are unicast (the hellos flood)
    c!.send(eth(mac(3), mac(1)));
    await a!.waitFrames(2); await b!.waitFrames(1); await c!.waitFrames(1);
    b!.frames.length = 0;
    c!.frames.length = 0;

    // 300 frames of varied sizes, every third to c (so b's records are not contiguous in a
    // read), every fifth with a priority tag (popped by the switch, so copied), written as one
    // stream cut at odd places: records split across reads.
    const want: Uint8Array[] = [], wantC: Uint8Array[] = [];
    const records: Buffer[] = [];
    for (let i = 0; i < 300; i++) {
      const payload = new Uint8Array(46 + ((i * 37) % 1400)).fill(i & 0xff);
      const tagged = i % 5 === 0;
      const dst = i % 3 === 1 ? mac(3) : mac(2);
      records.push(encodeFrame(eth(mac(1), dst, { payload, ...(tagged ? { vlan: 0 } : {}) })));
      (i % 3 === 1 ? wantC : want).push(eth(mac(1), dst, { payload }));
    }
    const stream = Buffer.concat(records);
    for (let off = 0, step = 1; off < stream.length; off += step, step = (step * 7 + 3) % 9000 + 1) a!.sendRaw(stream.subarray(off, off + step));
    const got = await b!.waitFrames(want.length, 5000);
    const gotC = await c!.waitFrames(wantC.length, 5000);
    assert.equal(got.length, want.length);
    assert.equal(gotC.length, wantC.length);
    got.forEach((f, i) => assert.deepEqual(new Uint8Array(f), want[i], `b: frame ${i}`));
    gotC.forEach((f, i) => assert.deepEqual(new Uint8Array(f), wantC[i], `c: frame ${i}`));
    assert.deepEqual(sw.portStats('a').drops, {});
  } finally {
    for (const n of nics) n.close();
    await sw.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
