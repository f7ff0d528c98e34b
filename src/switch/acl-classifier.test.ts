// The tuple-space classifier against the linear scan on random rule sets and frames (both are
// product code: 'auto' picks either), and whole PortAcls built each way — stateful flows,
// idle timeouts — on one random sequence of frames; then PortAcls as the product builds them
// (with verdict caches) against the uncached linear scan, Meter ACLs included. A divergence
// prints the seed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameInfo, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, formatIpv4, formatIpv6, ipv4InPrefix, ipv6InPrefix, parseCidr, parseIpv6Address } from '../packet/index.ts';
import { compileClassifier, compileRule, INBOUND, OUTBOUND, type Dir } from './acl-classifier.ts';
import { PortAcls } from './acl.ts';
import { VerdictCache } from './acl-verdict-cache.ts';
import type { ExtendedAcl, PortAcl } from './policy.ts';
import { seededRandom } from '../common/prng.ts';

const rng = seededRandom;

// Small pools, so rules and frames meet often.
const V4 = [0x0a000001, 0x0a000002, 0x0a0001fe, 0x0a010203, 0xc0a80101, 0xc0a801ff];
const V6 = ['fd00::1', 'fd00::2', 'fd00:0:0:1::5', 'fe80::1', '2001:db8::9'];
const PROTOS = [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6, 47];
const PORTS = [-1, 0, 22, 53, 80, 443, 1000, 5001, 65535];

function pick<T>(r: () => number, xs: readonly T[]): T { return xs[Math.floor(r() * xs.length)]!; }

function randomCidr(r: () => number, version: 4 | 6): string {
  if (version === 4) return `${formatIpv4(pick(r, V4))}/${pick(r, [0, 8, 16, 23, 24, 30, 32])}`;
  return `${formatIpv6(parseIpv6Address(pick(r, V6)))}/${pick(r, [0, 10, 48, 64, 100, 128])}`;
}

function randomPort(r: () => number): string | number | undefined {
  const x = r();
  if (x < 0.4) return undefined;
  if (x < 0.75) return pick(r, PORTS.filter((p) => p >= 0));
  const lo = pick(r, [0, 20, 53, 80, 1000]);
  return `${lo}-${lo + pick(r, [0, 1, 30, 500, 5000])}`;
}

function randomRules(r: () => number, n: number): ExtendedAcl[] {
  const weights = new Set<number>();
  const out: ExtendedAcl[] = [];
  while (out.length < n) {
    const weight = Math.floor(r() * 1000);
    if (weights.has(weight)) continue;
    weights.add(weight);
    const version = r() < 0.7 ? 4 : 6;
    // Mostly one shape, like real rule sets; the rest anything (mixed versions included).
    const uniform = r() < 0.5;
    const local = uniform ? undefined : r() < 0.4 ? randomCidr(r, r() < 0.9 ? version : (10 - version) as 4 | 6) : undefined;
    const remote = uniform ? `${formatIpv4(pick(r, V4))}/24` : r() < 0.6 ? randomCidr(r, version) : undefined;
    const protocol = uniform ? 'UDP' : pick(r, [undefined, 'TCP', 'UDP', 'ICMP', 'ICMPv4', 'ICMPv6', 47, 'Any']);
    const a: ExtendedAcl = {
      direction: r() < 0.5 ? 'Outbound' : 'Inbound', action: r() < 0.5 ? 'Allow' : 'Deny', weight,
      ...(local !== undefined ? { localIPAddress: local } : {}), ...(remote !== undefined ? { remoteIPAddress: remote } : {}),
      ...(protocol !== undefined ? { protocol } : {}),
      ...(uniform ? { remotePort: pick(r, [53, 80, 5001]) } : {}),
      ...(!uniform && randomPort(r) !== undefined ? { localPort: randomPort(r)! } : {}),
      ...(!uniform && randomPort(r) !== undefined ? { remotePort: randomPort(r)! } : {}),
      ...(r() < 0.2 ? { stateful: true, idleSessionTimeout: pick(r, [1, 5, 60]) } : {}),
    };
    out.push(a);
  }
  return out;
}

/** A random IP frame as the classifier sees it: FrameInfo fields plus the bytes its IPv6 offsets point into. */
function randomFrame(r: () => number, f: FrameInfo, b: Uint8Array): void {
  f.ipVersion = r() < 0.6 ? 4 : 6;
  f.ipProtocol = pick(r, PROTOS);
  const l4 = f.ipProtocol === IPPROTO_TCP || f.ipProtocol === IPPROTO_UDP;
  f.srcPort = l4 ? pick(r, PORTS) : -1;
  f.dstPort = l4 ? pick(r, PORTS) : -1;
  f.length = 100;
  f.ipSrcOffset = 0;
  f.ipDstOffset = 16;
  if (f.ipVersion === 4) {
    f.ipSrc = pick(r, V4);
    f.ipDst = pick(r, V4);
  } else {
    f.ipSrc = 0;
    f.ipDst = 0;
    b.set(parseIpv6Address(pick(r, V6)), 0);
    b.set(parseIpv6Address(pick(r, V6)), 16);
  }
}

/**
 * An oracle for ruleMatches, written from the ACL's text and the packet module's prefix tests
 * (not from the compiled Rule, whose IPv4 prefixes ruleMatches matches inline): protocol,
 * local/remote prefix and port ranges, in the VM's directions.
 */
function referenceMatch(a: ExtendedAcl, dir: Dir, f: FrameInfo, b: Uint8Array): boolean {
  const p = a.protocol === undefined ? 'ANY' : String(a.protocol).toUpperCase();
  const proto = f.ipProtocol;
  if (p === 'ICMP' ? proto !== IPPROTO_ICMP && proto !== IPPROTO_ICMPV6
    : p === 'TCP' ? proto !== IPPROTO_TCP : p === 'UDP' ? proto !== IPPROTO_UDP
      : p === 'ICMPV4' ? proto !== IPPROTO_ICMP : p === 'ICMPV6' ? proto !== IPPROTO_ICMPV6
        : p !== 'ANY' && proto !== Number(p)) return false;
  const out = dir === OUTBOUND;
  const inPrefix = (text: string | undefined, src: boolean): boolean => {
    if (text === undefined || text === 'Any') return true;
    const c = parseCidr(text);
    if (c.version === 4) return f.ipVersion === 4 && ipv4InPrefix(src ? f.ipSrc : f.ipDst, c.address, c.prefixLength);
    return f.ipVersion === 6 && ipv6InPrefix(b, src ? f.ipSrcOffset : f.ipDstOffset, c.address, c.prefixLength);
  };
  if (!inPrefix(a.localIPAddress, out) || !inPrefix(a.remoteIPAddress, !out)) return false;
  const inRange = (range: string | number | undefined, port: number): boolean => {
    if (range === undefined) return true;
    const [lo, hi = lo] = String(range).split('-').map(Number) as [number, number?];
    return port >= lo && port <= hi;
  };
  return inRange(a.localPort, out ? f.srcPort : f.dstPort) && inRange(a.remotePort, out ? f.dstPort : f.srcPort);
}

test('the linear scan decides as an oracle written from the rules\' text', () => {
  const f = new FrameInfo();
  const b = new Uint8Array(32);
  for (let seed = 3000; seed < 3200; seed++) {
    const r = rng(seed);
    const acls = randomRules(r, 1 + Math.floor(r() * 30));
    for (const dir of [OUTBOUND, INBOUND] as Dir[]) {
      const mine = acls.filter((a) => (a.direction === 'Outbound') === (dir === OUTBOUND)).sort((x, y) => y.weight - x.weight);
      const linear = compileClassifier(mine.map(compileRule), dir, 'linear');
      for (let i = 0; i < 200; i++) {
        randomFrame(r, f, b);
        const want = mine.find((a) => referenceMatch(a, dir, f, b)) ?? null;
        assert.equal(linear.lookup(f, b)?.acl ?? null, want, `seed ${seed} frame ${i}`);
      }
    }
  }
});

test('tuple-space classifier = linear scan on random rule sets and frames', () => {
  const f = new FrameInfo();
  const b = new Uint8Array(32);
  for (let seed = 1; seed <= 300; seed++) {
    const r = rng(seed);
    const acls = randomRules(r, 1 + Math.floor(r() * 60));
    for (const dir of [OUTBOUND, INBOUND] as Dir[]) {
      const rules = acls.filter((a) => (a.direction === 'Outbound') === (dir === OUTBOUND)).map(compileRule);
      const linear = compileClassifier(rules, dir, 'linear');
      const tuples = compileClassifier(rules, dir, 'tuples');
      const auto = compileClassifier(rules, dir, 'auto');
      for (let i = 0; i < 300; i++) {
        randomFrame(r, f, b);
        const want = linear.lookup(f, b)?.acl ?? null;
        assert.equal(tuples.lookup(f, b)?.acl ?? null, want, `seed ${seed} frame ${i}: tuples disagree`);
        assert.equal(auto.lookup(f, b)?.acl ?? null, want, `seed ${seed} frame ${i}: auto disagrees`);
      }
    }
  }
});

test('PortAcls compiled as tuples and as a linear scan decide alike, stateful flows included', () => {
  const f = new FrameInfo();
  const b = new Uint8Array(32);
  for (let seed = 1000; seed < 1100; seed++) {
    const r = rng(seed);
    const acls = randomRules(r, 5 + Math.floor(r() * 40));
    const linear = new PortAcls(acls, [], undefined, undefined, 'linear');
    const tuples = new PortAcls(acls, [], undefined, undefined, 'tuples');
    let now = 1_000_000;
    for (let i = 0; i < 400; i++) {
      randomFrame(r, f, b);
      const dir = (r() < 0.5 ? OUTBOUND : INBOUND) as Dir;
      now += Math.floor(r() * 400);
      assert.equal(tuples.check(dir, f, b, now), linear.check(dir, f, b, now), `seed ${seed} frame ${i}`);
    }
    assert.equal(tuples.flows.size, linear.flows.size, `seed ${seed}: flows`);
  }
});

function randomAcls2012(r: () => number, n: number): PortAcl[] {
  return Array.from({ length: n }, () => ({
    direction: pick(r, ['Inbound', 'Outbound', 'Both'] as const), action: pick(r, ['Allow', 'Deny', 'Meter', 'Meter'] as const),
    remoteIPAddress: r() < 0.2 ? 'Any' : randomCidr(r, r() < 0.7 ? 4 : 6),
  }));
}

test('verdict caches: PortAcls as built for ports decide, meter and keep flows exactly as the uncached linear scan', () => {
  const f = new FrameInfo();
  const b = new Uint8Array(32);
  let hits = 0, misses = 0, cachedSets = 0;
  for (let seed = 2000; seed < 2150; seed++) {
    const r = rng(seed);
    const acls = randomRules(r, 5 + Math.floor(r() * 60));
    const acls2012 = randomAcls2012(r, Math.floor(r() * 4));
    const cached = new PortAcls(acls, acls2012);
    const plain = new PortAcls(acls, acls2012, undefined, undefined, 'linear');
    if (cached.caches.some((c) => c !== null)) cachedSets++;
    let now = 1_000_000;
    // Mostly frames of 40 recurring flows (a flow's frame is made again from its own seed), so
    // the caches answer; the rest new.
    for (let i = 0; i < 600; i++) {
      randomFrame(r() < 0.8 ? rng(seed * 100 + Math.floor(r() * 40)) : r, f, b);
      const dir = (r() < 0.5 ? OUTBOUND : INBOUND) as Dir;
      now += Math.floor(r() * 400);
      assert.equal(cached.check(dir, f, b, now), plain.check(dir, f, b, now), `seed ${seed} frame ${i}`);
    }
    assert.deepEqual(cached.meters, plain.meters, `seed ${seed}: meters`);
    assert.equal(cached.flows.size, plain.flows.size, `seed ${seed}: flows`);
    for (const c of cached.caches) { hits += c?.hits ?? 0; misses += c?.misses ?? 0; }
  }
  // The comparison means something only if the caches answered most of those frames.
  assert.ok(cachedSets > 120, `${cachedSets} of 150 rule sets had a cache`);
  assert.ok(hits > misses, `cache hits ${hits}, misses ${misses}`);
});

test('verdict cache: a thousand flows taken in turn are each looked up once (no set overflows and thrashes)', () => {
  // The bench's traffic: one sender to 1,000 destinations in turn. With two ways, the few sets
  // holding three of those flows missed on every frame (8 % of all frames).
  const rules = [compileRule({ direction: 'Outbound', action: 'Allow', remoteIPAddress: '10.0.0.0/8', weight: 1 })];
  const cache = new VerdictCache(compileClassifier(rules, OUTBOUND, 'linear'));
  const f = new FrameInfo();
  const b = new Uint8Array(32);
  f.ipVersion = 4; f.ipProtocol = IPPROTO_UDP; f.ipSrc = 0x0a000001; f.srcPort = 40000; f.dstPort = 5001;
  for (let pass = 0; pass < 3; pass++) {
    for (let i = 0; i < 1000; i++) {
      f.ipDst = 0x0a010000 + i;
      assert.equal(cache.lookup(f, b)?.acl.weight, 1);
    }
  }
  assert.equal(cache.misses, 1000);
  assert.equal(cache.hits, 2000);
});
