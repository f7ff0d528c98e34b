// VirtualSwitch.announce: Move-VM's destination announces a moved guest's MAC from its port
// before the guest runs. The switch learns the MAC on that port at once (a station that had it
// elsewhere loses it), floods the RARP in the port's VLAN like a frame the port sent (the other
// ports and an uplink see QEMU's announce-self frame), and does not count it as the port's traffic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualSwitch } from './index.ts';
import { ETHERTYPE_RARP, RARP_REQUEST, macToNumber, parseArp, parseMac } from '../packet/index.ts';
import { TestNic, eth, mac, until } from './test-support.ts';

test('announce: the MAC is learned on the port at once, the RARP floods in its VLAN, not counted as its traffic', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-switch-'));
  const sw = await VirtualSwitch.create({ name: 's', type: 'Private', socketDir: dir, maxFrameBytes: 1518 });
  const nics: TestNic[] = [];
  try {
    const vlan10 = { vlan: { mode: 'Access' as const, vlanId: 10 } };
    const [pa, pb, pc] = [await sw.addPort({ id: 'moved', policy: vlan10 }), await sw.addPort({ id: 'peer', policy: { ...vlan10, guards: { macAddressSpoofing: 'On' } } }), await sw.addPort({ id: 'other-vlan', policy: { vlan: { mode: 'Access', vlanId: 20 } } })];
    const [moved, peer, other] = await Promise.all([pa, pb, pc].map((p) => TestNic.connect(p.socketPath)));
    nics.push(moved!, peer!, other!);
    await until(() => sw.listPorts().every((p) => p.connected));
    // The guest's MAC was last seen elsewhere: the peer's port stands for the uplink toward the source host (any MAC may come from it).
    peer!.send(eth(mac(7), mac(1)));
    await until(() => sw.macTable().some((e) => e.mac === macToNumber(parseMac(mac(7))) && e.port === 'peer'));
    const rx0 = sw.portStats('moved').rxFrames;

    sw.announce('moved', parseMac(mac(7)));
    assert.deepEqual(sw.macTable().filter((e) => e.mac === macToNumber(parseMac(mac(7)))).map((e) => e.port), ['moved'], 'learned on the announcing port at once');
    await peer!.waitFrames(1);
    const f = peer!.frames[0]!;
    assert.equal(f.readUInt16BE(12), ETHERTYPE_RARP, 'a RARP, as QEMU announces');
    assert.equal(f.subarray(0, 6).toString('hex'), 'ffffffffffff');
    assert.equal(f.subarray(6, 12).toString('hex'), mac(7).replace(/:/g, ''));
    const r = parseArp(f, 14);
    assert.ok(r.ok && r.op === RARP_REQUEST && r.sha === macToNumber(parseMac(mac(7))) && r.tha === r.sha, 'a reverse request for itself');
    assert.equal(sw.portStats('moved').rxFrames, rx0, "not counted as the port's traffic");

    // The peer's next frame to the guest goes to the announcing port only; the other VLAN saw nothing.
    peer!.send(eth(mac(2), mac(7)));
    await moved!.waitFrames(2); // the first: the peer's frame from the guest's MAC, flooded before the announce
    await new Promise((res) => setTimeout(res, 50)); // a frame flooded wrongly would have arrived by now
    assert.equal(other!.frames.length, 0, 'nothing reaches another VLAN');
    assert.equal(peer!.frames.length, 1);
  } finally {
    for (const n of nics) n.close();
    await sw.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
