// VLAN semantics of Set-VMNetworkAdapterVlan: untagged, access, trunk with native VLAN, and
// the private-VLAN matrix (isolated / community / promiscuous) of the seed's Table 3.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFrame } from '../packet/index.ts';
import { BCAST, Bench, eth, mac } from './test-support.ts';
import type { VlanSetting } from './policy.ts';

const spoofOk = { macAddressSpoofing: 'On' as const };

test('access ports: same VLAN talks, untagged on the wire; tagged frames from an access port are refused', async () => {
  const b = await Bench.create();
  await b.port('a10', { vlan: { mode: 'Access', vlanId: 10 }, guards: spoofOk });
  await b.port('b10', { vlan: { mode: 'Access', vlanId: 10 }, guards: spoofOk });
  await b.port('c20', { vlan: { mode: 'Access', vlanId: 20 }, guards: spoofOk });
  await b.port('u', { guards: spoofOk });
  b.send('a10', eth(mac(1), BCAST));
  assert.deepEqual(b.receivers(), ['b10']);
  assert.equal(parseFrame(b.take('b10')[0]!).vlanId, -1, 'delivered untagged');
  b.clear();
  b.send('a10', eth(mac(1), BCAST, { vlan: 10 }));
  assert.deepEqual(b.receivers(), []);
  assert.equal(b.drops('a10')['vlan-not-allowed'], 1);
  b.send('u', eth(mac(4), BCAST, { vlan: 20 }));
  assert.equal(b.drops('u')['vlan-not-allowed'], 1, 'untagged port refuses tagged frames');
  // A MAC learned on another VLAN is unknown in this one: flooded within VLAN 10 only.
  b.send('c20', eth(mac(3), BCAST));
  b.clear();
  b.send('a10', eth(mac(1), mac(3)));
  assert.deepEqual(b.receivers(), ['b10']);
  await b.sw.close();
});

test('trunk: tagged frames of allowed VLANs only, native VLAN untagged both ways', async () => {
  const b = await Bench.create();
  await b.port('t', { vlan: { mode: 'Trunk', allowedVlanIdList: [10, 20], nativeVlanId: 5 }, guards: spoofOk });
  await b.port('a10', { vlan: { mode: 'Access', vlanId: 10 }, guards: spoofOk });
  await b.port('a20', { vlan: { mode: 'Access', vlanId: 20 }, guards: spoofOk });
  await b.port('a30', { vlan: { mode: 'Access', vlanId: 30 }, guards: spoofOk });
  await b.port('a5', { vlan: { mode: 'Access', vlanId: 5 }, guards: spoofOk });
  for (const [port, vid] of [['a10', 10], ['a20', 20]] as const) {
    b.clear();
    b.send(port, eth(mac(vid), BCAST));
    assert.deepEqual(b.receivers(), ['t']);
    assert.equal(parseFrame(b.take('t')[0]!).vlanId, vid, 'delivered to the trunk tagged');
  }
  b.clear();
  b.send('a30', eth(mac(30), BCAST));
  assert.deepEqual(b.receivers(), [], 'VLAN 30 is not allowed on the trunk');
  b.send('a5', eth(mac(5), BCAST));
  assert.deepEqual(b.receivers(), ['t']);
  assert.equal(parseFrame(b.take('t')[0]!).vlanId, -1, 'native VLAN untagged');
  // From the trunk: tag 20 → a20 untagged; untagged → native; tag 30 refused.
  b.clear();
  b.send('t', eth(mac(9), BCAST, { vlan: 20 }));
  assert.deepEqual(b.receivers(), ['a20']);
  assert.equal(parseFrame(b.take('a20')[0]!).vlanId, -1);
  b.send('t', eth(mac(9), BCAST));
  assert.deepEqual(b.receivers(), ['a5']);
  b.clear();
  b.send('t', eth(mac(9), BCAST, { vlan: 30 }));
  assert.deepEqual(b.receivers(), []);
  assert.equal(b.drops('t')['vlan-not-allowed'], 1);
  await b.sw.close();
});

test('PVLAN matrix (Table 3): isolated ↔ promiscuous only; community ↔ same community + promiscuous; promiscuous ↔ all', async () => {
  const b = await Bench.create();
  const P = 100;
  const ports: Record<string, VlanSetting> = {
    i1: { mode: 'Isolated', primaryVlanId: P, secondaryVlanId: 101 },
    i2: { mode: 'Isolated', primaryVlanId: P, secondaryVlanId: 101 },
    cA1: { mode: 'Community', primaryVlanId: P, secondaryVlanId: 102 },
    cA2: { mode: 'Community', primaryVlanId: P, secondaryVlanId: 102 },
    cB: { mode: 'Community', primaryVlanId: P, secondaryVlanId: 103 },
    pr: { mode: 'Promiscuous', primaryVlanId: P, secondaryVlanIdList: [101, 102, 103] },
    pr2: { mode: 'Promiscuous', primaryVlanId: P, secondaryVlanIdList: [101, 102, 103] },
    other: { mode: 'Isolated', primaryVlanId: 200, secondaryVlanId: 201 },
  };
  let n = 1;
  const macs: Record<string, string> = {};
  for (const [id, vlan] of Object.entries(ports)) { macs[id] = mac(n++); await b.port(id, { vlan, mac: macs[id] }); }
  const reach: Record<string, string[]> = {
    i1: ['pr', 'pr2'], i2: ['pr', 'pr2'],
    cA1: ['cA2', 'pr', 'pr2'], cA2: ['cA1', 'pr', 'pr2'], cB: ['pr', 'pr2'],
    pr: ['cA1', 'cA2', 'cB', 'i1', 'i2', 'pr2'], pr2: ['cA1', 'cA2', 'cB', 'i1', 'i2', 'pr'],
    other: [],
  };
  // Broadcast (flooding) and, once everyone is learned, unicast to each port.
  for (const [src, expected] of Object.entries(reach)) {
    b.clear();
    b.send(src, eth(macs[src]!, BCAST));
    assert.deepEqual(b.receivers(), expected.sort(), `broadcast from ${src}`);
  }
  for (const [src, expected] of Object.entries(reach)) {
    for (const dst of Object.keys(ports)) {
      if (dst === src) continue;
      b.clear();
      b.send(src, eth(macs[src]!, macs[dst]!));
      // 'other' is in another PVLAN domain: its MAC is unknown here, so the frame floods.
      const want = dst === 'other' ? expected.sort() : expected.includes(dst) ? [dst] : [];
      assert.deepEqual(b.receivers(), want, `unicast ${src} → ${dst}`);
    }
  }
  assert.ok((b.drops('i2')['pvlan-isolation'] ?? 0) > 0);
  // A promiscuous port only serves the secondaries in its list.
  b.sw.setPortPolicy('pr2', { vlan: { mode: 'Promiscuous', primaryVlanId: P, secondaryVlanIdList: [102] } });
  b.clear();
  b.send('pr2', eth(macs.pr2!, BCAST));
  assert.deepEqual(b.receivers(), ['cA1', 'cA2', 'pr']);
  await b.sw.close();
});

test('PVLAN over a trunk: primary and secondary VLANs carried as tags', async () => {
  const b = await Bench.create();
  await b.port('i1', { mac: mac(1), vlan: { mode: 'Isolated', primaryVlanId: 100, secondaryVlanId: 101 } });
  await b.port('t', { guards: spoofOk, vlan: { mode: 'Trunk', allowedVlanIdList: [100, 101], nativeVlanId: 0 } });
  b.send('i1', eth(mac(1), BCAST));
  assert.equal(parseFrame(b.take('t')[0]!).vlanId, 101, 'isolated traffic leaves tagged with its secondary');
  b.send('t', eth(mac(9), BCAST, { vlan: 100 }));
  assert.equal(b.take('i1').length, 1, 'primary-tagged traffic (from the promiscuous side) reaches isolated');
  b.send('t', eth(mac(9), BCAST, { vlan: 101 }));
  assert.equal(b.take('i1').length, 0, 'isolated-tagged traffic does not');
  await b.sw.close();
});
