// NVGRE decapsulated from the switch's flow cache (decap-flow.ts, datapath.ts flowKey): a
// flow's second frame is a hit that delivers the same bytes as the full path; each thing the
// cached decision rests on beyond the switch's generation is seen by the very next frame — the
// MAC table moving a learned destination to another port, an outer source MAC other than the
// PA's (learned on the uplink as the full path learns it), a destination PA that is not ours
// (forwarded, not decapsulated); and a differential run — one random sequence of NVGRE frames
// (valid, from wrong PAs, to unknown MACs, mutated in every header), VM frames and changes
// (policy pushes, port MACs, MACs learned elsewhere) fed to a switch with the cache and one
// without — gives the same deliveries, drop counts and data path counters at every step.
// (Policy pushes and port changes: decisions.test.ts.)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRandom } from '../common/prng.ts';
import { encodeNvgre, formatMacNumber, parseIpv4Address } from '../packet/index.ts';
import { UPLINK_PORT_ID, VirtualSwitch } from '../switch/index.ts';
import { udp } from '../switch/test-support.ts';
import { GATEWAY_MAC, HNV_EXTENSION, paMac } from './index.ts';
import { addLookupRecord, addProviderAddress, emptyPolicy, lookupRecord, providerAddress, type HnvPolicy } from './policy.ts';

const VSID = 5001, OTHER_VSID = 6001;
const HERE = '192.168.100.1', THERE = '192.168.100.2', ELSEWHERE = '192.168.100.3';
const A = '52:54:00:00:0a:01', B = '52:54:00:00:0a:02', R = '52:54:00:00:0a:09', L = '52:54:00:00:0a:0c';
const MACS = [A, B, R, L, 'ff:ff:ff:ff:ff:ff', '52:54:00:00:0a:0f'];

/** Our PA; A and B here, R at `rAt`. */
function policy(rAt = THERE): HnvPolicy {
  let p = addProviderAddress(emptyPolicy(), providerAddress({ ProviderAddress: HERE, InterfaceIndex: 1, PrefixLength: 24 }));
  for (const [mac, pa, ca] of [[A, HERE, '10.0.0.1'], [B, HERE, '10.0.0.2'], [R, rAt, '10.0.0.9']] as const) {
    p = addLookupRecord(p, lookupRecord({ CustomerAddress: ca, VirtualSubnetID: VSID, MACAddress: mac.replace(/:/g, ''), ProviderAddress: pa, Rule: 'TranslationMethodEncap' }));
  }
  return p;
}

const macNumber = (m: string): number => parseInt(m.replace(/:/g, ''), 16);

/** NVGRE from `pa` to `to` (our PA unless said), inner `src` → `dst`; `outerSrc`: the PA's MAC unless said. */
function nvgre(pa: string, src: string, dst: string, o: { vsid?: number; to?: string; outerSrc?: Uint8Array; sport?: number } = {}): Uint8Array {
  const to = o.to ?? HERE;
  const inner = udp(src, dst, '10.0.0.9', '10.0.0.1', o.sport ?? 2000, 1000);
  const e = encodeNvgre({ outerDst: paMac(parseIpv4Address(to)), outerSrc: o.outerSrc ?? paMac(parseIpv4Address(pa)), providerSrc: parseIpv4Address(pa), providerDst: parseIpv4Address(to), vsid: o.vsid ?? VSID, inner });
  assert.ok(e.ok);
  return e.frame;
}

/** A switch with the HNV data path, its uplink toward the discard port; ports a, b (configured MACs A, B) and c, d (none: the subnet learns). */
class Host {
  readonly got: Record<string, Uint8Array[]> = { a: [], b: [], c: [], d: [] };
  private constructor(readonly sw: VirtualSwitch) {}

  static async create(cache = true): Promise<Host> {
    const sw = await VirtualSwitch.create({ name: 'decap', type: 'External', uplink: { localAddress: '127.0.0.1', localPort: 0, remoteAddress: '127.0.0.1', remotePort: 9 } }, { flowCache: cache });
    const h = new Host(sw);
    for (const [id, mac] of [['a', A], ['b', B], ['c', undefined], ['d', undefined]] as const) {
      await sw.addPort({ id, policy: { ...(mac ? { mac } : {}), virtualSubnetId: VSID }, sink: (f) => { h.got[id]!.push(Uint8Array.prototype.slice.call(f) as Uint8Array); } });
    }
    sw.addExtension(HNV_EXTENSION, { config: { policy: policy() } as unknown as Record<string, unknown> });
    return h;
  }

  configure(p: HnvPolicy): void { this.sw.configureExtension(HNV_EXTENSION, { policy: p } as unknown as Record<string, unknown>); }
  /** The frames each port got since the last call. */
  take(): Record<string, Uint8Array[]> {
    return Object.fromEntries(Object.entries(this.got).map(([k, v]) => [k, v.splice(0)]));
  }
  hits(): number { return this.sw.flowCacheStats()!.hits; }
  status(): { decapsulated: number; encapsulated: number; drops: Record<string, number> } {
    return this.sw.extensions()[0]!.status as { decapsulated: number; encapsulated: number; drops: Record<string, number> };
  }
  /** Where a frame injected on `from` went: the ports that got it, else the drop reason counted, else 'nothing'. */
  send(from: string, frame: Uint8Array): string {
    const before = { ...this.sw.portStats(from).drops };
    this.sw.inject(from, frame);
    const got = Object.entries(this.take()).filter(([, v]) => v.length > 0).map(([k]) => `port ${k}`);
    if (got.length > 0) return got.join(', ');
    const now = this.sw.portStats(from).drops;
    return Object.keys(now).find((r) => now[r] !== before[r]) ?? 'nothing';
  }
}

let h: Host;
before(async () => { h = await Host.create(); });
after(async () => { await h.sw.close(); });

test('the second frame of an NVGRE flow is decapsulated from the switch\'s cache: the same bytes, counted', () => {
  h.configure(policy());
  const d0 = h.status().decapsulated, hits0 = h.hits();
  h.sw.inject(UPLINK_PORT_ID, nvgre(THERE, R, A));
  h.sw.inject(UPLINK_PORT_ID, nvgre(THERE, R, A));
  const got = h.take().a!;
  assert.equal(got.length, 2);
  assert.deepEqual(got[1], got[0]);
  assert.deepEqual(got[0], udp(R, A, '10.0.0.9', '10.0.0.1', 2000, 1000));
  assert.equal(h.hits(), hits0 + 1, 'the second frame was a hit');
  assert.equal(h.status().decapsulated, d0 + 2);
  // Another flow of the same PA and subnet (other inner MACs) is a flow of its own.
  assert.equal(h.send(UPLINK_PORT_ID, nvgre(THERE, R, B)), 'port b');
  assert.equal(h.hits(), hits0 + 1);
});

test('a subnet that learns: the destination MAC learned behind another port takes the next frame there', () => {
  h.configure(policy());
  h.sw.inject('c', udp(L, B, '10.0.0.12', '10.0.0.2', 1, 2)); // L behind c
  h.take();
  assert.equal(h.send(UPLINK_PORT_ID, nvgre(THERE, R, L)), 'port c');
  const hits0 = h.hits();
  assert.equal(h.send(UPLINK_PORT_ID, nvgre(THERE, R, L)), 'port c');
  assert.equal(h.hits(), hits0 + 1, 'cached');
  h.sw.inject('d', udp(L, B, '10.0.0.12', '10.0.0.2', 1, 2)); // L moved to d: a MAC learned, nothing else changed
  h.take();
  assert.equal(h.send(UPLINK_PORT_ID, nvgre(THERE, R, L)), 'port d');
  assert.equal(h.send(UPLINK_PORT_ID, nvgre(THERE, R, L)), 'port d');
});

test('an outer source MAC other than the PA\'s: the full path takes the frame and the uplink learns that MAC', () => {
  h.configure(policy());
  assert.equal(h.send(UPLINK_PORT_ID, nvgre(THERE, R, A)), 'port a');
  assert.equal(h.send(UPLINK_PORT_ID, nvgre(THERE, R, A)), 'port a');
  const other = new Uint8Array([0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);
  const hits0 = h.hits();
  assert.equal(h.send(UPLINK_PORT_ID, nvgre(THERE, R, A, { outerSrc: other })), 'port a');
  assert.equal(h.hits(), hits0, 'not from the cache');
  assert.ok(h.sw.macTable().some((e) => e.mac === macNumber('02:11:22:33:44:55') && e.port === UPLINK_PORT_ID), 'learned on the uplink');
});

test('the same inner flow to a PA that is not ours is forwarded as the switch does, not decapsulated', () => {
  h.configure(policy());
  assert.equal(h.send(UPLINK_PORT_ID, nvgre(THERE, R, A)), 'port a');
  assert.equal(h.send(UPLINK_PORT_ID, nvgre(THERE, R, A)), 'port a');
  const d0 = h.status().decapsulated;
  // Default forwarding from the uplink: no port of a virtual subnet is a candidate.
  assert.equal(h.send(UPLINK_PORT_ID, nvgre(THERE, R, A, { to: ELSEWHERE })), 'nothing');
  assert.equal(h.status().decapsulated, d0);
});

/** Offsets: outer Ethernet 0–13, IPv4 14–33, GRE 34–41, inner 42–. As fuzz.test.ts's, plus the outer MACs. */
function mutate(f: Uint8Array, r: () => number): Uint8Array {
  const b = Uint8Array.prototype.slice.call(f) as Uint8Array;
  const at = (lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo));
  switch (Math.floor(r() * 8)) {
    case 0: return b.subarray(0, at(0, b.length));
    case 1: b[at(34, 42)]! ^= 1 << at(0, 8); return b;
    case 2: b[at(14, 34)]! ^= 1 << at(0, 8); return b;
    case 3: b[at(38, 41)] = [0, 0xff][at(0, 2)]!; return b;
    case 4: b[20] = 0x20 | (b[20]! & 0x1f); return b;
    case 5: b[at(42, 54)]! ^= 0xff; return b;
    case 6: b[at(0, 12)]! ^= 1 << at(0, 8); return b;
    default: b[16] = at(0, 256); b[17] = at(0, 256); return b;
  }
}

test('differential: the same random NVGRE, VM frames and changes through a switch with the cache and one without', async () => {
  const on = await Host.create(true), off = await Host.create(false);
  try {
    const r = seededRandom(31);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const hex = (fs: Uint8Array[]): string[] => fs.map((f) => Buffer.from(f).toString('hex'));
    for (let step = 0; step < 6000; step++) {
      const x = r();
      let act: (h: Host) => void;
      if (x < 0.8) {
        const src = r() < 0.05 ? '00:00:5e:00:01:01' : pick(MACS.slice(0, 4)), dst = pick(MACS);
        const pa = pick([THERE, THERE, THERE, ELSEWHERE, HERE]);
        let f = nvgre(pa, r() < 0.02 ? formatMacNumber(GATEWAY_MAC) : src, dst, { vsid: r() < 0.9 ? VSID : OTHER_VSID, to: r() < 0.9 ? HERE : ELSEWHERE, sport: 2000 + Math.floor(r() * 3), ...(r() < 0.05 ? { outerSrc: new Uint8Array([2, 0, 0, 0, 0, Math.floor(r() * 3)]) } : {}) });
        if (r() < 0.3) f = mutate(f, r);
        act = (h) => { if (f.length >= 14) h.sw.inject(UPLINK_PORT_ID, Uint8Array.prototype.slice.call(f) as Uint8Array); };
      } else if (x < 0.9) {
        const port = pick(['a', 'b', 'c', 'd']), src = port === 'a' ? A : port === 'b' ? B : pick([L, R, '52:54:00:00:0a:0d']), dst = pick(MACS);
        const f = udp(src, dst, '10.0.0.5', '10.0.0.6', 7, 8);
        act = (h) => h.sw.inject(port, Uint8Array.prototype.slice.call(f) as Uint8Array);
      } else if (x < 0.95) {
        const p = policy(pick([THERE, ELSEWHERE, HERE]));
        act = (h) => h.configure(p);
      } else {
        const mac = pick([A, L, '52:54:00:00:0a:0e']);
        act = (h) => h.sw.setPortPolicy('a', { mac });
      }
      act(on); act(off);
      const a = on.take(), b = off.take();
      for (const port of Object.keys(a)) assert.deepEqual(hex(a[port]!), hex(b[port]!), `step ${step}: port ${port}`);
      if (step % 50 === 49) {
        for (const port of ['a', 'b', 'c', 'd', UPLINK_PORT_ID]) {
          const s1 = on.sw.portStats(port), s2 = off.sw.portStats(port);
          assert.deepEqual([s1.rxFrames, s1.txFrames, s1.drops], [s2.rxFrames, s2.txFrames, s2.drops], `step ${step}: port ${port}'s counters`);
        }
        const t1 = on.status(), t2 = off.status();
        assert.deepEqual([t1.decapsulated, t1.encapsulated, t1.drops], [t2.decapsulated, t2.encapsulated, t2.drops], `step ${step}: the data path's counters`);
      }
    }
    assert.ok(on.hits() > 1000, `the cache was used: ${on.hits()} hits`);
  } finally {
    await Promise.all([on.sw.close(), off.sw.close()]);
  }
});
