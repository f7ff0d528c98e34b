// Port mirroring (Source → Destination copies, no duplicates) and pcap capture per port and
// per switch, checked by tshark (no malformed/expert warnings, frame counts right); an
// External switch pair over the UDP uplink carries VLAN tags end to end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFrame } from '../packet/index.ts';
import { VirtualSwitch } from './index.ts';
import { BCAST, Bench, arp, eth, freeUdpPort, ip, mac, ping, udp, until } from './test-support.ts';

const haveTshark = spawnSync('tshark', ['--version']).status === 0;

test('port mirroring: a monitored port\'s traffic both ways is copied to the destination port', async () => {
  const b = await Bench.create();
  await b.port('a', { mac: mac(1) });
  await b.port('b', { mac: mac(2), mirroring: 'Source' });
  await b.port('c', { mac: mac(3) });
  await b.port('mon', { mac: mac(4), mirroring: 'Destination' });
  b.send('a', eth(mac(1), BCAST));
  b.send('b', eth(mac(2), BCAST));
  b.send('c', eth(mac(3), BCAST));
  b.clear();
  b.send('a', eth(mac(1), mac(2)));
  b.send('b', eth(mac(2), mac(1)));
  b.send('a', eth(mac(1), mac(3)));
  assert.equal(b.take('mon').length, 2, 'a→b and b→a copied, a→c not');
  b.send('b', eth(mac(2), BCAST));
  assert.equal(b.take('mon').length, 1, 'a broadcast already reaching the monitor is not duplicated');
  b.sw.setPortPolicy('b', { mirroring: 'None' });
  b.send('a', eth(mac(1), mac(2)));
  assert.equal(b.take('mon').length, 0);
  await b.sw.close();
});

test('pcap capture per port and per switch opens in tshark without warnings', { skip: !haveTshark && process.env.CI !== 'true' && 'tshark not installed' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-cap-'));
  try {
    const b = await Bench.create({}, true);
    await b.port('a', { mac: mac(1) });
    await b.port('b', { mac: mac(2), vlan: { mode: 'Trunk', allowedVlanIdList: [7], nativeVlanId: 0 }, guards: { macAddressSpoofing: 'On' } });
    await b.port('c', { mac: mac(3), vlan: { mode: 'Access', vlanId: 7 } });
    b.sw.startCapture('b', join(dir, 'b.pcap'));
    b.sw.startCapture(null, join(dir, 'all.pcap'));
    b.send('a', arp('request', mac(1), ip(1), ip(2)));
    b.send('b', arp('reply', mac(2), ip(2), ip(1), { dst: mac(1), tha: mac(1) }));
    b.send('a', ping(mac(1), mac(2), ip(1), ip(2)));
    b.send('b', udp(mac(2), mac(1), ip(2), ip(1), 5353, 5353));
    b.send('c', ping(mac(3), BCAST, '10.7.0.3', '10.7.0.255'));
    b.send('a', new Uint8Array(9));
    assert.throws(() => b.sw.startCapture('b', join(dir, 'x.pcap')), /already running/);
    assert.deepEqual({ ...b.sw.stopCapture('b'), bytes: 0 }, { path: join(dir, 'b.pcap'), frames: 5, bytes: 0 });
    assert.equal(b.sw.stopCapture(null)!.frames, 6);
    assert.equal(b.sw.stopCapture(null), null);
    const read = (f: string, ...extra: string[]): string => {
      const r = spawnSync('tshark', ['-r', join(dir, f), '-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', ...extra], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout + r.stderr;
    };
    const bOut = read('b.pcap', '-T', 'fields', '-e', 'frame.protocols', '-e', 'vlan.id');
    const lines = bOut.trim().split('\n').filter((l) => !l.startsWith('Running as user'));
    assert.equal(lines.length, 5, bOut);
    assert.match(lines[4]!, /eth:ethertype:vlan:ethertype:ip:icmp:data\s+7/, 'the trunk port saw VLAN 7 tagged');
    const expert = read('b.pcap', '-z', 'expert,warn', '-q');
    assert.doesNotMatch(expert, /Malformed|\bWarn|\bError/, expert);
    const all = read('all.pcap', '-z', 'expert,warn', '-q');
    // The 9-byte frame is in the switch capture as received; it is the only one tshark flags.
    assert.match(all, /Errors \(1\)/, all);
    assert.match(all, /\s1\s+Malformed\s+Ethernet/, all);
    assert.doesNotMatch(all, /Warns/, all);
    await b.sw.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('External switches: two switches joined by UDP uplinks on loopback; VLANs carried tagged', async () => {
  // Each side must know the other's port up front. Ports the kernel just handed out as free,
  // not a random pick in 40000–59999: that is inside Linux's ephemeral range, where another
  // test file running alongside (QEMU, DNS, the daemon) may hold the port: EADDRINUSE.
  const p1 = await freeUdpPort();
  let p2 = await freeUdpPort();
  while (p2 === p1) p2 = await freeUdpPort();
  const e1 = await VirtualSwitch.create({ name: 'e1', type: 'External', uplink: { localAddress: '127.0.0.1', localPort: p1, remoteAddress: '127.0.0.1', remotePort: p2 } });
  const e2 = await VirtualSwitch.create({ name: 'e2', type: 'External', uplink: { localAddress: '127.0.0.1', localPort: p2, remoteAddress: '127.0.0.1', remotePort: p1 } });
  const got: Record<string, Uint8Array[]> = { a: [], b: [], c: [] };
  const sink = (k: string) => (f: Uint8Array): void => { got[k]!.push(Uint8Array.prototype.slice.call(f)); };
  try {
    await e1.addPort({ id: 'a', sink: sink('a'), policy: { mac: mac(1), vlan: { mode: 'Access', vlanId: 30 } } });
    await e2.addPort({ id: 'b', sink: sink('b'), policy: { mac: mac(2), vlan: { mode: 'Access', vlanId: 30 } } });
    await e2.addPort({ id: 'c', sink: sink('c'), policy: { mac: mac(3), vlan: { mode: 'Access', vlanId: 31 } } });
    e1.inject('a', eth(mac(1), BCAST));
    await until(() => got.b!.length === 1);
    assert.equal(parseFrame(got.b![0]!).vlanId, -1);
    e2.inject('b', eth(mac(2), mac(1)));
    await until(() => got.a!.length === 1);
    assert.equal(got.c!.length, 0, 'VLAN 31 saw nothing');
    assert.equal(e1.portStats('uplink').txFrames, 1);
    assert.equal(e2.portStats('uplink').rxFrames, 1);
    assert.deepEqual(e1.macTable().map((m) => [m.domain, m.port]).sort(), [[30, 'a'], [30, 'uplink']]);
  } finally {
    await e1.close();
    await e2.close();
  }
});

