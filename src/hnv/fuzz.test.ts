// 20,000 malformed NVGRE/GRE frames into the uplink of a switch running the HNV data path
// never crash it, and each one the switch takes for NVGRE to this host (or cannot even parse)
// is counted: dropped by reason on the uplink, or — when the mutation happened to leave a
// valid frame — delivered. Mutations aim at the provider headers: GRE flags/version/protocol,
// the key (VSID, reserved VSIDs), IPv4 header fields and checksum, fragments, truncation in
// every header, the inner frame's MACs, and trailing junk. The switch still forwards afterwards.
// The frames arrive as datagrams over the uplink's UDP socket from a peer uplink: through the
// batching addon (recvmmsg, GSO/GRO; skipped when it is not built, a failure under CI=true)
// and through node:dgram (VMHOST_NO_UDP_ADDON=1).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { seededRandom } from '../common/prng.ts';
import { encodeNvgre, parseFrame, parseIpv4Address } from '../packet/index.ts';
import { UPLINK_PORT_ID, VirtualSwitch } from '../switch/index.ts';
import { freeUdpPort, ping } from '../switch/test-support.ts';
import { UdpUplinkIo } from '../switch/uplink.ts';
import { udpAddonStatus } from '../switch/udp-batch.ts';
import { HNV_EXTENSION, paMac } from './index.ts';
import { addLookupRecord, addProviderAddress, emptyPolicy, lookupRecord, providerAddress } from './policy.ts';

const PA = '192.168.100.2', PEER = '192.168.100.1';
const A = '52:54:00:00:00:0a', B = '52:54:00:00:00:0b';

function valid(vsid: number): Uint8Array {
  const e = encodeNvgre({
    outerDst: paMac(parseIpv4Address(PA)), outerSrc: paMac(parseIpv4Address(PEER)), providerSrc: parseIpv4Address(PEER), providerDst: parseIpv4Address(PA),
    vsid, flowId: 7, inner: ping(A, B, '10.0.0.10', '10.0.0.11'),
  });
  assert.ok(e.ok);
  return e.frame;
}

/** Offsets: outer Ethernet 0–13, IPv4 14–33, GRE 34–41, inner 42–. */
function mutate(f: Uint8Array, r: () => number): Uint8Array {
  const b = Uint8Array.prototype.slice.call(f) as Uint8Array;
  const at = (lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo));
  switch (Math.floor(r() * 8)) {
    case 0: return b.subarray(0, at(0, b.length)); // truncated anywhere
    case 1: b[at(34, 42)]! ^= 1 << at(0, 8); return b; // a GRE bit: flags, version, protocol, key
    case 2: b[at(14, 34)]! ^= 1 << at(0, 8); return b; // an IPv4 header bit (length, flags, checksum…)
    case 3: b[at(38, 41)] = [0, 0xff][at(0, 2)]!; return b; // a reserved or out-of-range VSID
    case 4: b[20] = 0x20 | (b[20]! & 0x1f); return b; // MF: a fragment
    case 5: b[at(42, 54)]! ^= 0xff; return b; // inner MACs
    case 6: { const out = new Uint8Array(b.length + at(1, 64)); out.set(b); for (let i = b.length; i < out.length; i++) out[i] = at(0, 256); return out; } // trailing junk
    default: b[16] = at(0, 256); b[17] = at(0, 256); return b; // IPv4 total length lied about
  }
}

/** Frames sent between waits for the switch to have taken them: well inside the uplink's receive buffer. */
const CHUNK = 500;
/** Shorter than an Ethernet header: the uplink's keepalive, never a frame (uplink.ts). */
const MIN_FRAME_BYTES = 14;

async function fuzz(t: TestContext, addon: boolean): Promise<void> {
  const status = udpAddonStatus();
  if (addon && !status.native) {
    if (process.env.CI === 'true') assert.fail(`UDP batch addon not loaded: ${status.reason}`);
    t.skip(`UDP batch addon not loaded: ${status.reason}`);
    return;
  }
  const saved = process.env.VMHOST_NO_UDP_ADDON;
  if (!addon) process.env.VMHOST_NO_UDP_ADDON = '1';
  let policy = addProviderAddress(emptyPolicy(), providerAddress({ ProviderAddress: PA, InterfaceIndex: 1, PrefixLength: 24 }));
  policy = addLookupRecord(policy, lookupRecord({ CustomerAddress: '10.0.0.10', VirtualSubnetID: 5001, MACAddress: A, ProviderAddress: PEER, Rule: 'TranslationMethodEncap' }));
  policy = addLookupRecord(policy, lookupRecord({ CustomerAddress: '10.0.0.11', VirtualSubnetID: 5001, MACAddress: B, ProviderAddress: PA, Rule: 'TranslationMethodEncap' }));
  let delivered = 0;
  const pa = await freeUdpPort();
  let pb = await freeUdpPort();
  while (pb === pa) pb = await freeUdpPort();
  const ext = await VirtualSwitch.create({ name: 'fuzz', type: 'External', uplink: { localAddress: '127.0.0.1', localPort: pa, remoteAddress: '127.0.0.1', remotePort: pb } });
  // The other host's uplink, sending the frames as the tunnel carries them.
  const peer = await UdpUplinkIo.open({ localAddress: '127.0.0.1', localPort: pb, remoteAddress: '127.0.0.1', remotePort: pa }, { onFrame: () => {}, onError: () => {} });
  if (saved === undefined) delete process.env.VMHOST_NO_UDP_ADDON; else process.env.VMHOST_NO_UDP_ADDON = saved;
  try {
    await ext.addPort({ id: 'b', policy: { mac: B, virtualSubnetId: 5001 }, sink: () => { delivered++; } });
    ext.addExtension(HNV_EXTENSION, { config: { policy } as unknown as Record<string, unknown> });
    const s = (): ReturnType<typeof ext.portStats> => ext.portStats(UPLINK_PORT_ID);
    /** Every datagram sent so far has reached the switch (counted, not timed). */
    const taken = async (n: number): Promise<void> => { while (s().rxFrames < n) await new Promise((r) => setImmediate(r)); };
    const r = seededRandom(15);
    const paAddr = parseIpv4Address(PA);
    let accountable = 0, frames = 0;
    delivered = 0;
    for (let i = 0; i < 20_000; i++) {
      const f = mutate(valid(r() < 0.8 ? 5001 : 6001), r);
      if (f.length < MIN_FRAME_BYTES) continue;
      const info = parseFrame(f);
      // What the switch cannot parse it drops by reason; GRE to our PA is the extension's to count or deliver.
      if (!info.ok || (info.ipVersion === 4 && info.ipProtocol === 47 && info.ipDst === paAddr)) accountable++;
      peer.send(f, 0, f.length);
      if (++frames % CHUNK === 0) await taken(frames);
    }
    await taken(frames);
    assert.equal(s().rxFrames, frames);
    assert.ok(frames > 19_000, `${frames}`);
    const dropped = Object.values(s().drops).reduce((x, y) => x + y, 0);
    assert.equal(dropped + delivered, accountable, JSON.stringify(s().drops));
    assert.ok(accountable > 15_000, `${accountable}`);
    assert.ok(Object.keys(s().drops).length >= 6, JSON.stringify(s().drops));
    for (const reason of Object.keys(s().drops)) assert.match(reason, /^(nvgre-|truncated-|bad-|unsupported-|giant|runt|not-|ipv4-|gre-|malformed)/, reason);
    const before = delivered;
    const last = valid(5001);
    peer.send(last, 0, last.length);
    await taken(frames + 1);
    assert.equal(delivered, before + 1, 'still forwarding');
  } finally {
    await Promise.all([peer.close(), ext.close()]);
  }
}

test('20,000 malformed NVGRE/GRE frames over the uplink (batching addon): no crash, every one counted', (t) => fuzz(t, true));
test('20,000 malformed NVGRE/GRE frames over the uplink (node:dgram): no crash, every one counted', (t) => fuzz(t, false));
