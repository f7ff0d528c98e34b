// The NVGRE data path's remembered decisions (decisions.ts) never outlive what they were made
// from: each policy or port change — a lookup record added, removed or re-pointed to another
// PA, a port's VSID or MAC changed, a port removed, the provider MTU — is seen by the very next
// frame, both ways (a VM's frame encapsulated or not; NVGRE from a PA decapsulated or not),
// after the decision was made and used (cache hits counted). A VM's frame that is delivered
// (encapsulated, or to a port of the subnet) and NVGRE decapsulated to a port ride the
// switch's flow cache from their second frame on (route-flow.ts, decap-flow.ts), so those
// cases show the flow cache's entry dropped too; the last
// tests show what only the flow cache must see (the extension disabled, a MAC learned behind
// a local port, a frame over the MTU in a cached flow). One real switch; its uplink's peer is
// a plain UDP socket that reads what was encapsulated.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { decodeNvgre, encodeNvgre, formatIpv4, parseIpv4Address } from '../packet/index.ts';
import { UPLINK_PORT_ID, VirtualSwitch } from '../switch/index.ts';
import { udp, until } from '../switch/test-support.ts';
import { HNV_EXTENSION, paMac } from './index.ts';
import { addLookupRecord, addProviderAddress, emptyPolicy, lookupRecord, providerAddress, type HnvPolicy } from './policy.ts';

const VSID = 5001, OTHER_VSID = 6001;
const HERE = '192.168.100.1', THERE = '192.168.100.2', ELSEWHERE = '192.168.100.3';
const A = '52:54:00:00:0a:01', B = '52:54:00:00:0a:02', R = '52:54:00:00:0a:09';
const IP = { [A]: '10.0.0.1', [B]: '10.0.0.2', [R]: '10.0.0.9' } as Record<string, string>;

/** Our PA, and records: A and B here, R (a remote VM) at `rAt` (none: no record). */
function policy(rAt: string | null = THERE, extra: [string, string, number][] = []): HnvPolicy {
  let p = addProviderAddress(emptyPolicy(), providerAddress({ ProviderAddress: HERE, InterfaceIndex: 1, PrefixLength: 24 }));
  const recs: [string, string, number][] = [[A, HERE, VSID], [B, HERE, VSID], ...(rAt ? [[R, rAt, VSID] as [string, string, number]] : []), ...extra];
  for (const [mac, pa, vsid] of recs) {
    p = addLookupRecord(p, lookupRecord({ CustomerAddress: IP[mac] ?? '10.0.0.50', VirtualSubnetID: vsid, MACAddress: mac.replace(/:/g, ''), ProviderAddress: pa, Rule: 'TranslationMethodEncap' }));
  }
  return p;
}

let sw: VirtualSwitch;
let far: Socket;
const got: Record<string, number> = { a: 0, b: 0 };
const datagrams: Uint8Array[] = [];

before(async () => {
  far = createSocket('udp4');
  far.on('message', (m) => datagrams.push(new Uint8Array(m)));
  far.bind(0, '127.0.0.1');
  await once(far, 'listening');
  sw = await VirtualSwitch.create({ name: 'dec', type: 'External', uplink: { localAddress: '127.0.0.1', localPort: 0, remoteAddress: '127.0.0.1', remotePort: far.address().port } });
  for (const [id, mac] of [['a', A], ['b', B]] as const) await sw.addPort({ id, policy: { mac, virtualSubnetId: VSID }, sink: () => { got[id]!++; } });
  sw.addExtension(HNV_EXTENSION, { config: { policy: policy() } as unknown as Record<string, unknown> });
});
after(async () => { await sw.close(); far.close(); });

const configure = (p: HnvPolicy, providerMtu?: number): void => sw.configureExtension(HNV_EXTENSION, { policy: p, ...(providerMtu ? { providerMtu } : {}) } as unknown as Record<string, unknown>);
const drops = (port: string): Record<string, number> => ({ ...sw.portStats(port).drops });
const hits = (): number => (sw.extensions()[0]!.status as { decisionCache: { hits: number } }).decisionCache.hits;
const flowHits = (): number => sw.flowCacheStats()!.hits;

/** What became of a frame port `from` sent to `to`: 'port b', 'encapsulated to <PA>', or the drop reason. */
async function send(from: 'a' | 'b', to: string, size = 100): Promise<string> {
  const before = drops(from), seen = { ...got }, n = datagrams.length, tx = sw.portStats(UPLINK_PORT_ID).txFrames;
  sw.inject(from, udp(from === 'a' ? A : B, to, IP[from === 'a' ? A : B]!, IP[to] ?? '10.0.0.77', 1000, 2000, new Uint8Array(size).fill(size & 0xff)));
  if (sw.portStats(UPLINK_PORT_ID).txFrames > tx) {
    await until(() => datagrams.length > n);
    const d = decodeNvgre(datagrams.at(-1)!);
    assert.ok(d.ok);
    return `encapsulated to ${formatIpv4(d.providerDst)}`;
  }
  for (const p of ['a', 'b']) if (got[p]! > seen[p]!) return `port ${p}`;
  const after_ = drops(from);
  return Object.keys(after_).find((r) => after_[r] !== before[r]) ?? 'nothing';
}

/** What became of NVGRE from PA `pa`, VM `src` → `dst` in `vsid`: 'port a', or the drop reason. */
function receive(pa: string, src: string, dst: string, vsid = VSID): string {
  const before = drops(UPLINK_PORT_ID), seen = { ...got };
  const inner = udp(src, dst, IP[src] ?? '10.0.0.77', IP[dst] ?? '10.0.0.78', 2000, 1000);
  const e = encodeNvgre({ outerDst: paMac(parseIpv4Address(HERE)), outerSrc: paMac(parseIpv4Address(pa)), providerSrc: parseIpv4Address(pa), providerDst: parseIpv4Address(HERE), vsid, inner });
  assert.ok(e.ok);
  sw.inject(UPLINK_PORT_ID, e.frame);
  for (const p of ['a', 'b']) if (got[p]! > seen[p]!) return `port ${p}`;
  const after_ = drops(UPLINK_PORT_ID);
  return Object.keys(after_).find((r) => after_[r] !== before[r]) ?? 'nothing';
}

/**
 * Twice, the same answer; returns it. The second frame is decided from a cache: a delivery
 * (a port, or encapsulated) from the switch's flow cache, a refusal from the decisions.
 */
async function twiceSend(from: 'a' | 'b', to: string, size?: number): Promise<string> {
  const first = await send(from, to, size), h = hits(), f = flowHits();
  assert.equal(await send(from, to, size), first);
  if (first.startsWith('port ') || first.startsWith('encapsulated ')) assert.ok(flowHits() > f && hits() === h, 'the second frame was a hit of the switch\'s flow cache');
  else assert.ok(hits() > h, 'the second frame was decided from the cache');
  return first;
}
function twiceReceive(pa: string, src: string, dst: string, vsid?: number): string {
  const first = receive(pa, src, dst, vsid), h = hits(), f = flowHits();
  assert.equal(receive(pa, src, dst, vsid), first);
  if (first.startsWith('port ')) assert.ok(flowHits() > f && hits() === h, 'the second frame was a hit of the switch\'s flow cache');
  else assert.ok(hits() > h, 'the second frame was decided from the cache');
  return first;
}

test('a lookup record removed, then added again: the next frame each way follows', async () => {
  configure(policy());
  assert.equal(await twiceSend('a', R), `encapsulated to ${THERE}`);
  assert.equal(twiceReceive(THERE, R, A), 'port a');
  configure(policy(null));
  assert.equal(await twiceSend('a', R), 'hnv-no-lookup-record');
  assert.equal(twiceReceive(THERE, R, A), 'nvgre-no-lookup-record');
  configure(policy());
  assert.equal(await send('a', R), `encapsulated to ${THERE}`);
  assert.equal(receive(THERE, R, A), 'port a');
});

test('a record re-pointed to another PA (the VM moved): encapsulated there; NVGRE from the old PA refused', async () => {
  configure(policy());
  assert.equal(await twiceSend('a', R), `encapsulated to ${THERE}`);
  assert.equal(twiceReceive(THERE, R, A), 'port a');
  configure(policy(ELSEWHERE));
  assert.equal(await send('a', R), `encapsulated to ${ELSEWHERE}`);
  assert.equal(receive(THERE, R, A), 'nvgre-pa-mismatch');
  assert.equal(receive(ELSEWHERE, R, A), 'port a');
  configure(policy());
});

test('a port\'s VSID changed, then back: frames to it and NVGRE for it follow', async () => {
  configure(policy(THERE, [[B, HERE, OTHER_VSID]]));
  assert.equal(await twiceSend('a', B), 'port b');
  assert.equal(twiceReceive(THERE, R, B), 'port b');
  sw.setPortPolicy('b', { virtualSubnetId: OTHER_VSID });
  // B's 5001 record still says here, but no port of 5001 has B any more.
  assert.equal(await send('a', B), 'hnv-unknown-destination');
  assert.equal(receive(THERE, R, B), 'nvgre-unknown-destination');
  sw.setPortPolicy('b', { virtualSubnetId: VSID });
  assert.equal(await send('a', B), 'port b');
  assert.equal(receive(THERE, R, B), 'port b');
});

test('a port\'s MAC changed: the old MAC is no longer delivered to it, the new one is', async () => {
  const NEW = '52:54:00:00:0a:03';
  configure(policy(THERE, [[NEW, HERE, VSID]]));
  assert.equal(await twiceSend('a', B), 'port b');
  assert.equal(twiceReceive(THERE, R, B), 'port b');
  assert.equal(twiceReceive(THERE, R, NEW), 'nvgre-unknown-destination');
  sw.setPortPolicy('b', { mac: NEW });
  assert.equal(await send('a', B), 'hnv-unknown-destination');
  assert.equal(receive(THERE, R, B), 'nvgre-unknown-destination');
  assert.equal(receive(THERE, R, NEW), 'port b');
  sw.setPortPolicy('b', { mac: B });
});

test('a port removed: frames to it refused; the last port of a VSID gone, its NVGRE is an unknown VSID', async () => {
  configure(policy());
  assert.equal(await twiceSend('a', B), 'port b');
  assert.equal(twiceReceive(THERE, R, B), 'port b');
  assert.equal(twiceReceive(THERE, R, A), 'port a');
  await sw.removePort('b');
  assert.equal(await send('a', B), 'hnv-unknown-destination');
  assert.equal(receive(THERE, R, B), 'nvgre-unknown-destination');
  await sw.removePort('a');
  assert.equal(receive(THERE, R, A), 'nvgre-unknown-vsid');
  for (const [id, mac] of [['a', A], ['b', B]] as const) await sw.addPort({ id, policy: { mac, virtualSubnetId: VSID }, sink: () => { got[id]!++; } });
  assert.equal(await send('a', B), 'port b');
  assert.equal(receive(THERE, R, A), 'port a');
});

test('the provider MTU lowered: a frame that fitted is refused as nvgre-mtu from the next frame on', async () => {
  configure(policy());
  assert.equal(await twiceSend('a', R, 1000), `encapsulated to ${THERE}`);
  configure(policy(), 1000);
  assert.equal(await send('a', R, 1000), 'nvgre-mtu');
  configure(policy());
  assert.equal(await send('a', R, 1000), `encapsulated to ${THERE}`);
});

test('a flow in the switch\'s cache encapsulates byte for byte as the extension does, and its frames are counted', async () => {
  configure(policy());
  const n = datagrams.length, enc = (sw.extensions()[0]!.status as { encapsulated: number }).encapsulated;
  assert.equal(await twiceSend('a', R), `encapsulated to ${THERE}`);
  await until(() => datagrams.length >= n + 2);
  // The first frame took the full path (forward()), the second the cached flow: the same bytes.
  assert.deepEqual(datagrams[n + 1], datagrams[n]);
  assert.equal((sw.extensions()[0]!.status as { encapsulated: number }).encapsulated, enc + 2);
});

test('the extension disabled, then enabled: the flow it offered is not used meanwhile', async () => {
  configure(policy());
  assert.equal(await twiceSend('a', R), `encapsulated to ${THERE}`);
  sw.disableExtension(HNV_EXTENSION);
  try {
    // Default forwarding: R is unknown in the subnet's learning domain, so flooded to its other port; nothing leaves by the uplink.
    assert.equal(await send('a', R), 'port b');
  } finally {
    sw.enableExtension(HNV_EXTENSION);
  }
  assert.equal(await twiceSend('a', R), `encapsulated to ${THERE}`);
});

test('a frame of a cached flow over the provider MTU is refused as the extension refuses it', async () => {
  configure(policy(), 1000);
  assert.equal(await twiceSend('a', R, 100), `encapsulated to ${THERE}`);
  // The same flow (the switch's key: port and MACs), a bigger frame.
  assert.equal(await send('a', R, 1000), 'nvgre-mtu');
  assert.equal(await send('a', R, 100), `encapsulated to ${THERE}`);
  configure(policy());
});

test('a subnet that learns: the MAC learned behind a local port stops the cached encapsulation at the next frame', async () => {
  configure(policy());
  // A port without a configured MAC: the subnet learns (its VM may use any MAC).
  let atC = 0;
  await sw.addPort({ id: 'c', policy: { virtualSubnetId: VSID }, sink: () => { atC++; } });
  try {
    assert.equal(await twiceSend('a', R), `encapsulated to ${THERE}`);
    // R's MAC shows up behind port c (the VM moved here before its record did).
    sw.inject('c', udp(R, B, IP[R]!, IP[B]!, 2000, 1000));
    const seen = atC;
    assert.equal(await send('a', R), 'nothing');
    assert.equal(atC, seen + 1, 'port c got the frame');
  } finally {
    await sw.removePort('c');
  }
  assert.equal(await twiceSend('a', R), `encapsulated to ${THERE}`);
});
