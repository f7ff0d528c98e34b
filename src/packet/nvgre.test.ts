// The NVGRE codec: encode → decode returns every field and the customer frame unchanged (seeded
// property over random fields); each refused field names its reason on both sides. The switch's
// decoder (decodeNvgreInto, from the classifier's parse) answers as decodeNvgre, frame for frame.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIpv4 as parseIpv4Address, formatMacNumber, parseMac } from './address.ts';
import { put16, put32 } from './bytes.ts';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4, buildEthernet, type EthernetFields } from './ethernet.ts';
import { IPPROTO_GRE, buildIpv4, ipv4ChecksumOk, setIpv4Checksum } from './ipv4.ts';
import { buildNvgre } from './gre.ts';
import { NVGRE_OVERHEAD, NvgreRecord, NvgreTemplate, decodeNvgre, decodeNvgreInto, encodeNvgre, nvgreTemplate, type NvgreFields } from './nvgre.ts';
import { FrameInfo, parseFrameInto } from './classify.ts';
import { seededRandom } from '../common/prng.ts';

const rng = seededRandom;

const PA1 = parseIpv4Address('192.168.4.1'), PA2 = parseIpv4Address('192.168.4.2');
const UPLINK = parseMac('02:00:00:00:04:01'), NEXT = parseMac('02:00:00:00:04:02');
const inner = (n = 60) => buildEthernet({ dst: parseMac('00:15:5d:00:00:0b'), src: parseMac('00:15:5d:00:00:0a'), ethertype: ETHERTYPE_ARP, payload: new Uint8Array(n - 14).fill(0xa5) });
const base = (over: Partial<NvgreFields> = {}): NvgreFields => ({ outerDst: NEXT, outerSrc: UPLINK, providerSrc: PA1, providerDst: PA2, vsid: 5001, flowId: 7, inner: inner(), ...over });
function frame(over: Partial<NvgreFields> = {}): Uint8Array {
  const e = encodeNvgre(base(over));
  assert.ok(e.ok, e.ok ? '' : e.detail);
  return e.frame;
}

test('encode → decode: every field and the customer frame come back (property, 2,000 random frames)', () => {
  const r = rng(0x7637);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  for (let i = 0; i < 2000; i++) {
    const customer = inner(int(14, 1400));
    const f = base({
      vsid: int(4096, 16_777_214), flowId: int(0, 255), ttl: int(1, 255), dscp: int(0, 63), inner: customer,
      providerSrc: int(1, 0xdfff_ffff), providerDst: int(1, 0xdfff_ffff), outerVlan: r() < 0.3 ? int(1, 4094) : undefined,
    });
    const e = encodeNvgre(f);
    assert.ok(e.ok, e.ok ? '' : e.detail);
    assert.equal(e.frame.length, customer.length + NVGRE_OVERHEAD + (f.outerVlan === undefined ? 0 : 4));
    const d = decodeNvgre(e.frame);
    assert.ok(d.ok, d.ok ? '' : d.reason);
    assert.equal(d.vsid, f.vsid);
    assert.equal(d.flowId, f.flowId);
    assert.equal(d.key, (f.vsid * 256 + f.flowId!) >>> 0);
    assert.equal(d.providerSrc, f.providerSrc);
    assert.equal(d.providerDst, f.providerDst);
    assert.equal(d.ttl, f.ttl);
    assert.equal(d.dscp, f.dscp);
    assert.equal(d.outerVlan?.vid, f.outerVlan);
    assert.equal(formatMacNumber(d.outerSrc), '02:00:00:00:04:01');
    assert.equal(formatMacNumber(d.innerSrc), '00:15:5d:00:00:0a');
    assert.equal(d.innerEthertype, ETHERTYPE_ARP);
    assert.deepEqual(e.frame.subarray(d.innerOffset, d.innerOffset + d.innerLength), customer);
  }
});

test('one template per destination: frames of any length, VSID and flow are byte for byte what encodeNvgre makes, checksum included', () => {
  const t = nvgreTemplate({ outerDst: NEXT, outerSrc: UPLINK, providerSrc: PA1, providerDst: PA2, mtu: 9000, outerVlan: 12 });
  assert.ok(t instanceof NvgreTemplate);
  const r = rng(77);
  for (let i = 0; i < 500; i++) {
    const f = base({ inner: inner(14 + Math.floor(r() * 3000)), vsid: 4096 + Math.floor(r() * 100_000), flowId: Math.floor(r() * 256), mtu: 9000, outerVlan: 12 });
    const a = t.encode(f.vsid, f.flowId!, f.inner), b = encodeNvgre(f);
    assert.ok(a.ok && b.ok);
    assert.deepEqual(a.frame, b.frame);
    const d = decodeNvgre(a.frame);
    assert.ok(d.ok, d.ok ? '' : d.reason);
    assert.deepEqual([d.vsid, d.flowId, d.innerLength], [f.vsid, f.flowId, f.inner.length]);
  }
  assert.deepEqual(t.encode(5001, 0, inner(9000)), { ok: false, refused: 'too-big', detail: '9028 bytes of outer IPv4 exceed the provider MTU 9000 (customer frames may be at most 8972 bytes)' });
  const bad = nvgreTemplate({ outerDst: NEXT, outerSrc: parseMac('01:00:5e:00:00:01'), providerSrc: PA1, providerDst: PA2 });
  assert.ok(!(bad instanceof NvgreTemplate) && bad.refused === 'bad-mac');
});

test('encode refuses each bad field by name', () => {
  const refused = (over: Partial<NvgreFields>) => { const e = encodeNvgre(base(over)); return e.ok ? 'ok' : e.refused; };
  assert.equal(refused({ vsid: 4095 }), 'bad-vsid');
  assert.equal(refused({ vsid: 0xffffff }), 'bad-vsid');
  assert.equal(refused({ vsid: 5001.5 }), 'bad-vsid');
  assert.equal(refused({ flowId: 256 }), 'bad-flow-id');
  assert.equal(refused({ outerSrc: parseMac('01:00:5e:00:00:01') }), 'bad-mac');
  assert.equal(refused({ outerDst: new Uint8Array(5) }), 'bad-mac');
  assert.equal(refused({ outerVlan: 4095 }), 'bad-vlan');
  assert.equal(refused({ ttl: 0 }), 'bad-ttl');
  assert.equal(refused({ dscp: 64 }), 'bad-dscp');
  assert.equal(refused({ providerDst: 0 }), 'bad-provider-address');
  assert.equal(refused({ providerDst: parseIpv4Address('239.0.0.1') }), 'bad-provider-address');
  assert.equal(refused({ inner: new Uint8Array(13) }), 'inner-too-short');
  assert.equal(refused({ mtu: 67 }), 'bad-mtu');
  assert.equal(refused({ inner: inner(1500 - 28) }), 'ok', 'a 1472-byte customer frame fits a 1500 MTU');
  const big = encodeNvgre(base({ inner: inner(1500 - 27) }));
  assert.ok(!big.ok && big.refused === 'too-big' && /at most 1472 bytes/.test(big.detail), 'one byte more does not, and says the limit');
});

test('decode refuses each bad field by reason, at the field\'s offset', () => {
  const IP = 14, GRE = 14 + 20;
  const edit = (fn: (b: Uint8Array) => void, fixChecksum = true) => { const b = frame(); fn(b); if (fixChecksum) setIpv4Checksum(b, IP); return decodeNvgre(b); };
  const expect = (d: ReturnType<typeof decodeNvgre>, reason: string, offset: number) => {
    assert.ok(!d.ok, `expected ${reason}`);
    assert.equal(d.reason, reason);
    assert.equal(d.offset, offset);
  };
  expect(decodeNvgre(new Uint8Array(10)), 'truncated-ethernet', 0);
  expect(decodeNvgre(buildEthernet({ dst: NEXT, src: UPLINK, ethertype: ETHERTYPE_ARP, payload: new Uint8Array(46) })), 'not-nvgre', 12);
  expect(edit((b) => { b[IP + 9] = 17; }), 'not-nvgre', IP + 9);
  expect(edit((b) => { b[IP + 8] = 1; }, false), 'bad-ipv4-checksum', IP + 10);
  expect(edit((b) => { put16(b, IP + 6, 0x2000); }), 'nvgre-fragment', IP + 6);
  expect(edit((b) => { put16(b, IP + 6, 0x0001); }), 'nvgre-fragment', IP + 6);
  expect(edit((b) => { put16(b, GRE, 0x2001); }), 'unsupported-gre-version', GRE);
  for (const flags of [0x0000, 0xa000, 0x3000, 0x6000, 0x2100]) expect(edit((b) => { put16(b, GRE, flags); }), 'nvgre-bad-flags', GRE);
  expect(edit((b) => { put16(b, GRE + 2, ETHERTYPE_IPV4); }), 'nvgre-bad-protocol', GRE + 2);
  expect(edit((b) => { put32(b, GRE + 4, (4095 << 8) | 1); }), 'nvgre-reserved-vsid', GRE + 4);
  expect(edit((b) => { put32(b, GRE + 4, 0xffffff00); }), 'nvgre-reserved-vsid', GRE + 4);
  // The IPv4 total length says where the customer frame ends: shorter than an Ethernet header.
  expect(edit((b) => { put16(b, IP + 2, 20 + 8 + 13); }), 'truncated-nvgre-inner', GRE + 8);
  expect(edit((b) => { put16(b, IP + 2, 20 + 7); }), 'truncated-gre', GRE);
  // Outer Ethernet padding after the IPv4 packet is not part of the customer frame.
  const padded = new Uint8Array(frame().length + 6);
  padded.set(frame());
  const d = decodeNvgre(padded);
  assert.ok(d.ok && d.innerLength === 60);
});

test('decodeNvgreInto answers as decodeNvgre on every frame the classifier passes (differential: 20,000 random and malformed frames)', () => {
  const r = rng(0x5a17);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const info = new FrameInfo(), rec = new NvgreRecord();
  const reasons = new Map<string, number>();
  let accepted = 0, classifierRefused = 0;
  for (let i = 0; i < 20_000; i++) {
    let b = frame({ vsid: int(4096, 16_777_214), flowId: int(0, 255), inner: inner(int(14, 200)), outerVlan: r() < 0.2 ? int(1, 4094) : undefined });
    const ip = b[12] === 0x81 ? 18 : 14;
    // 0–3 edits: a random byte of the headers, a length field's lie, a truncation, the IHL, a fragment, the key, the GRE flags; the checksum fixed or not.
    for (let n = int(0, 3); n > 0; n--) {
      const k = r();
      if (k < 0.4) b[int(0, Math.min(b.length - 1, ip + 20 + 8 + 14))] = int(0, 255);
      else if (k < 0.6) put16(b, ip + 2, [0, 19, 20, 27, 28, 41, 42, b.length - ip, b.length - ip + 1, int(0, 0xffff)][int(0, 9)]!);
      else if (k < 0.75) b = b.slice(0, int(0, b.length));
      else if (k < 0.85) b[ip] = [0x44, 0x46, 0x4f, 0x55, 0x45][int(0, 4)]!;
      else if (k < 0.9) put16(b, ip + 6, [0x2000, 0x0001, 0x4000, 0x3fff][int(0, 3)]!);
      else if (k < 0.95 && b.length >= ip + 28) put32(b, ip + 24, [int(0, 4095) << 8, 0xffffff00 + int(0, 255), int(0, 0xffffffff)][int(0, 2)]!);
      else if (b.length >= ip + 28) put16(b, ip + 20, [0x0000, 0x8000, 0x2001, 0xa000, 0x3000][int(0, 4)]!);
      if (r() < 0.7 && b.length >= ip + 20 && (b[ip]! & 0xf) * 4 <= b.length - ip && (b[ip]! & 0xf) >= 5) setIpv4Checksum(b, ip);
    }
    if (r() < 0.05) b = new Uint8Array(int(0, 120)).map(() => int(0, 255));
    parseFrameInto(b, info);
    // A frame the classifier refuses is dropped by the switch under the classifier's reason, before any extension.
    if (!info.ok) { classifierRefused++; continue; }
    const a = decodeNvgre(b), ok = decodeNvgreInto(b, info, rec);
    assert.equal(ok, a.ok, `frame ${i}: ${Buffer.from(b).toString('hex')}`);
    if (!a.ok) {
      assert.deepEqual([rec.reason, rec.layer, rec.offset], [a.reason, a.layer, a.offset], `frame ${i}`);
      reasons.set(a.reason, (reasons.get(a.reason) ?? 0) + 1);
      continue;
    }
    accepted++;
    for (const k of ['providerSrc', 'providerDst', 'ttl', 'dscp', 'key', 'vsid', 'flowId', 'innerOffset', 'innerLength', 'innerDst', 'innerSrc', 'innerEthertype'] as const) {
      assert.equal(rec[k], a[k], `frame ${i}: ${k}`);
    }
  }
  assert.ok(accepted > 1000 && classifierRefused > 100, `accepted ${accepted}, refused by the classifier ${classifierRefused}`);
  for (const reason of ['not-nvgre', 'bad-ipv4-checksum', 'nvgre-fragment', 'nvgre-bad-flags', 'nvgre-bad-protocol', 'nvgre-reserved-vsid', 'truncated-gre', 'truncated-nvgre-inner']) {
    assert.ok(reasons.has(reason), `${reason} reached (${[...reasons.keys()].join(', ')})`);
  }
});

test('encodeTo writes into a lent slot exactly what encode makes, and refuses as encode does', () => {
  const t = nvgreTemplate({ outerDst: NEXT, outerSrc: UPLINK, providerSrc: PA1, providerDst: PA2, mtu: 200 });
  assert.ok(t instanceof NvgreTemplate);
  const customer = inner(100);
  const slab = new Uint8Array(1000).fill(0xee);
  const slot = slab.subarray(10, 10 + t.frameLength(customer.length));
  const e = t.encode(5001, 9, customer);
  assert.ok(e.ok);
  assert.equal(t.encodeTo(5001, 9, customer, slot), slot, 'the slot is the frame');
  assert.deepEqual(slot, e.frame);
  assert.equal(slab[9], 0xee, 'nothing written before the slot');
  assert.equal(slab[10 + slot.length], 0xee, 'nothing written after it');
  assert.equal(t.encodeTo(5001, 9, inner(200 - 27), slot), 'too-big');
  assert.equal(t.encodeTo(4095, 9, customer, slot), 'bad-vsid');
  assert.equal(t.encodeTo(5001, 256, customer, slot), 'bad-flow-id');
  assert.equal(t.encodeTo(5001, 0, new Uint8Array(13), slot), 'inner-too-short');
});

/**
 * The same frame from the generic builders, layer by layer (Ethernet, IPv4 with DF and its
 * checksum summed whole, GRE with the key): an encoder that shares nothing with the template.
 */
function layered(f: NvgreFields): Uint8Array {
  const ip = buildIpv4({ src: f.providerSrc, dst: f.providerDst, protocol: IPPROTO_GRE, ttl: f.ttl ?? 64, dscp: f.dscp ?? 0, payload: buildNvgre(f.vsid, f.inner, f.flowId ?? 0) });
  const eth: EthernetFields = { dst: f.outerDst, src: f.outerSrc, ethertype: ETHERTYPE_IPV4, payload: ip, ...(f.outerVlan !== undefined ? { vlan: { vid: f.outerVlan } } : {}) };
  return buildEthernet(eth);
}

test('write (a cached flow\'s encapsulation: the template copied, length, checksum and key patched) into a lent slot is byte for byte the layered builders\' frame (differential, 3,000 random frames)', () => {
  const r = rng(4242);
  // One staging buffer, as the uplink lends it: frames laid end to end, the slot's old bytes garbage.
  const stage = new Uint8Array(1 << 16).fill(0xee);
  let at = 0;
  for (let i = 0; i < 3000; i++) {
    const vlan = r() < 0.25 ? 1 + Math.floor(r() * 4094) : undefined;
    const f: NvgreFields = {
      outerDst: Uint8Array.from({ length: 6 }, () => Math.floor(r() * 256)), outerSrc: Uint8Array.from({ length: 6 }, (_, j) => (j === 0 ? 2 : Math.floor(r() * 256))),
      providerSrc: 0x0a000001 + Math.floor(r() * 0xd0000000), providerDst: 0x0b000001 + Math.floor(r() * 0xd0000000),
      vsid: 4096 + Math.floor(r() * (0xfffffe - 4096)), flowId: Math.floor(r() * 256), inner: Uint8Array.from({ length: 14 + Math.floor(r() * 1500) }, () => Math.floor(r() * 256)),
      ttl: 1 + Math.floor(r() * 255), dscp: Math.floor(r() * 64), mtu: 9000, ...(vlan !== undefined ? { outerVlan: vlan } : {}),
    };
    const t = nvgreTemplate(f);
    assert.ok(t instanceof NvgreTemplate);
    assert.ok(t.fits(f.inner.length));
    const n = t.frameLength(f.inner.length);
    if (at + n > stage.length) at = 0;
    const slot = stage.subarray(at, at + n);
    const out = t.write(f.vsid, f.flowId!, f.inner, slot);
    assert.equal(out, slot);
    assert.deepEqual(out, layered(f), `frame ${i}`);
    assert.ok(ipv4ChecksumOk(out, vlan === undefined ? 14 : 18), `frame ${i}: outer IPv4 checksum`);
    at += n;
  }
  const t = nvgreTemplate({ outerDst: NEXT, outerSrc: UPLINK, providerSrc: PA1, providerDst: PA2, mtu: 1500 });
  assert.ok(t instanceof NvgreTemplate);
  assert.deepEqual([t.fits(13), t.fits(14), t.fits(1472), t.fits(1473)], [false, true, true, false]);
});
