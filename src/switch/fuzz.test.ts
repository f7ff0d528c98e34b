// Malformed input never crashes the switch: mutated frames (truncated, bit-flipped, length
// fields lied about, extended, giant) from the packet library's samples are injected on ports
// with every feature on (trunk + PVLAN, guards, stateful and metering ACLs, extensions,
// capture, mirroring, a fair queue); every frame is counted as received and captured, and
// both deliveries and drops by reason (malformed, giant, guards, ACLs) occur.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// The fixtures are test material, deliberately kept out of the packet library's public index.
import { samples } from '../packet/samples.ts';
import { Bench, mac } from './test-support.ts';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32; };
}

function mutate(f: Uint8Array, r: () => number): Uint8Array {
  const b = Uint8Array.prototype.slice.call(f);
  switch (Math.floor(r() * 5)) {
    case 0: return b.subarray(0, Math.floor(r() * b.length));
    case 1: { for (let i = 0, n = 1 + Math.floor(r() * 4); i < n; i++) b[Math.floor(r() * b.length)]! ^= 1 << Math.floor(r() * 8); return b; }
    case 2: { const o = 12 + Math.floor(r() * Math.max(1, b.length - 13)); if (o + 1 < b.length) { b[o] = 0xff; b[o + 1] = Math.floor(r() * 256); } return b; }
    case 3: { const out = new Uint8Array(b.length + Math.floor(r() * 64)); out.set(b); return out; }
    default: return r() < 0.5 ? new Uint8Array(9100) : b;
  }
}

test('20,000 mutated frames: no throw, every frame counted and captured, drops by reason', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-fuzz-'));
  const b = await Bench.create({ maxFrameBytes: 9018 });
  try {
    const spoof = { macAddressSpoofing: 'On' as const, dhcpGuard: 'On' as const, routerGuard: 'On' as const, arpGuard: 'On' as const };
    await b.port('trunk', { guards: spoof, vlan: { mode: 'Trunk', allowedVlanIdList: [1, 10, 100, 101], nativeVlanId: 0 }, mirroring: 'Source',
      extendedAcls: [
        { direction: 'Outbound', action: 'Allow', protocol: 'TCP', weight: 3, stateful: true, idleSessionTimeout: 5 },
        { direction: 'Outbound', action: 'Deny', remoteIPAddress: '192.0.2.0/24', protocol: 'UDP', remotePort: '1-1000', weight: 2 },
        { direction: 'Inbound', action: 'Deny', remoteIPAddress: '2001:db8::/32', weight: 1 },
      ],
      acls: [{ direction: 'Both', action: 'Meter', remoteIPAddress: 'Any' }, { direction: 'Outbound', action: 'Deny', remoteMacAddress: mac(66) }] });
    await b.port('plain', { guards: { macAddressSpoofing: 'On' }, egressCapacity: 1e9 });
    await b.port('iso', { guards: spoof, vlan: { mode: 'Isolated', primaryVlanId: 100, secondaryVlanId: 101 } });
    await b.port('mon', { mirroring: 'Destination' });
    b.sw.addExtension('vmhost.flow-sampler', { config: { sampleRate: 7 } });
    b.sw.startCapture(null, join(dir, 'all.pcap'));
    const base = samples().map((s) => s.frame);
    const r = rng(7);
    const ports = ['trunk', 'plain', 'iso'];
    const n = 20_000;
    for (let i = 0; i < n; i++) {
      b.send(ports[i % 3]!, mutate(base[i % base.length]!, r));
      if (i % 1000 === 0) { b.clock.advance(2000); b.clear(); }
    }
    const st = b.sw.stats();
    assert.equal(st.rxFrames, n);
    const dropped = Object.values(st.drops).reduce((x, y) => x + y, 0);
    assert.ok(st.txFrames > 1000 && dropped > 1000, JSON.stringify(st.drops));
    assert.ok(st.drops['giant-frame']! > 0 && st.drops['truncated-ethernet']! > 0);
    assert.equal(b.sw.stopCapture(null)!.frames, n);
  } finally {
    await b.sw.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
