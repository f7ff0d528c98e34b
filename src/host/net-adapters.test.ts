// Declaring the host's "physical" adapters: the --net-adapter syntax, DIR/net-adapters.json,
// uniqueness across both, and lookup errors that list what there is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNetAdapters, parseNetAdapter } from './net-adapters.ts';

test('parseNetAdapter: the syntax, IPv6 in brackets, and one-line errors naming the flag', () => {
  const a = parseNetAdapter('Ethernet 2=udp:127.0.0.1:47001->127.0.0.2:47002');
  assert.deepEqual(a, {
    name: 'Ethernet 2', uplink: { localAddress: '127.0.0.1', localPort: 47001, remoteAddress: '127.0.0.2', remotePort: 47002 },
    description: 'vmhost UDP tunnel 127.0.0.1:47001 -> 127.0.0.2:47002',
  });
  assert.equal(parseNetAdapter('v6=udp:[::1]:1->[::1]:2').description, 'vmhost UDP tunnel [::1]:1 -> [::1]:2');
  const bad: [string, RegExp][] = [
    ['Uplink', /^--net-adapter: 'Uplink' is not NAME=udp:LOCALADDR:LOCALPORT->REMOTEADDR:REMOTEPORT$/],
    ['U=tcp:127.0.0.1:1->127.0.0.1:2', /is not NAME=udp:/],
    ['U=udp:127.0.0.1:0->127.0.0.1:2', /port 0 in .* is not 1–65535/],
    ['U=udp:127.0.0.1:1->127.0.0.1:99999', /port 99999/],
    ['U=udp:localhost:1->127.0.0.1:2', /'localhost' in .* is not an IP address/],
    ['U=udp:[127.0.0.1]:1->127.0.0.1:2', /is not an IP address/],
    ['U=udp:127.0.0.1:1->[::1]:2', /mixes IPv4 and IPv6/],
    ['U=udp:127.0.0.1:5->127.0.0.1:5', /points at itself/],
    ['U =udp:127.0.0.1:1->127.0.0.1:2', /adapter name 'U ' must be/],
    ['A/B=udp:127.0.0.1:1->127.0.0.1:2', /adapter name 'A\/B' must be/],
  ];
  for (const [spec, re] of bad) assert.throws(() => parseNetAdapter(spec), (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT' && re.test(e.message) && !e.message.includes('\n'), spec);
});

test('loadNetAdapters: flags plus DIR/net-adapters.json; names and local endpoints unique across both', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vmhost-nic-'));
  try {
    const none = await loadNetAdapters(dir, []);
    assert.deepEqual(none.list(), []);
    assert.throws(() => none.pick('Uplink', undefined), /NetAdapterName: no network adapter 'Uplink'; this host has none \(declare them with vmhostd --net-adapter/);

    await writeFile(join(dir, 'net-adapters.json'), JSON.stringify(['Spare=udp:127.0.0.1:47003->127.0.0.1:47004']));
    const both = await loadNetAdapters(dir, ['Uplink=udp:127.0.0.1:47001->127.0.0.1:47002']);
    assert.deepEqual(both.list().map((a) => a.name), ['Uplink', 'Spare']);
    assert.equal(both.adapter('SPARE')?.uplink.localPort, 47003, 'names are case-insensitive');
    assert.equal(both.pick(undefined, 'vmhost UDP tunnel 127.0.0.1:47001 -> 127.0.0.1:47002').name, 'Uplink');
    assert.throws(() => both.pick('Nope', undefined), /no network adapter 'Nope'; this host has 'Uplink', 'Spare'/);
    assert.throws(() => both.pick(undefined, 'x'), /NetAdapterInterfaceDescription: no network adapter 'x'; this host has 'vmhost UDP tunnel 127.0.0.1:47001/);
    assert.throws(() => both.pick('Uplink', 'x'), /not both/);

    await assert.rejects(loadNetAdapters(dir, ['spare=udp:127.0.0.1:47005->127.0.0.1:47006']), /net-adapters.json: network adapter 'Spare' is declared twice/);
    await assert.rejects(loadNetAdapters(dir, ['Other=udp:127.0.0.1:47003->127.0.0.1:47009']), /adapters 'Other' and 'Spare' both use local endpoint 127.0.0.1:47003/);
    await writeFile(join(dir, 'net-adapters.json'), '{"Spare": "udp:127.0.0.1:1->127.0.0.1:2"}');
    await assert.rejects(loadNetAdapters(dir, []), /net-adapters.json: .* must be a JSON array of "NAME=udp:/);
    await writeFile(join(dir, 'net-adapters.json'), '[');
    await assert.rejects(loadNetAdapters(dir, []), /net-adapters.json: .* is not JSON/);
    await writeFile(join(dir, 'net-adapters.json'), '["Spare=udp:127.0.0.1:1"]');
    await assert.rejects(loadNetAdapters(dir, []), /^.*net-adapters.json: 'Spare=udp:127.0.0.1:1' is not NAME=udp:/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
