// Differential test: the one-pass classifier and the per-protocol parsers, chained the
// way the classifier dispatches, must agree on every frame (valid samples and seeded
// mutations): same verdict, same drop reason/layer/offset, same key fields.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFrame } from './classify.ts';
import { samples } from './samples.ts';
import { parseEthernet, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from './ethernet.ts';
import { parseArp } from './arp.ts';
import { parseIpv4, IPPROTO_GRE, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from './ipv4.ts';
import { parseIpv6 } from './ipv6.ts';
import { parseIcmpv4 } from './icmpv4.ts';
import { parseIcmpv6 } from './icmpv6.ts';
import { parseUdp } from './udp.ts';
import { parseTcp } from './tcp.ts';
import { parseDhcp, isDhcpServerMessageType, BOOTREPLY } from './dhcp.ts';
import { parseGre, GRE_UDP_PORT } from './gre.ts';
import type { Malformed } from './result.ts';

type Summary = Record<string, number | string | boolean>;

function chain(b: Uint8Array): Summary | Malformed {
  const e = parseEthernet(b);
  if (!e.ok) return e;
  const s: Summary = { dst: e.dst, src: e.src, vlanId: e.vlan?.vid ?? -1, ethertype: e.ethertype };
  if (e.ethertype === ETHERTYPE_ARP) {
    const a = parseArp(b, e.payloadOffset);
    return a.ok ? { ...s, arpOp: a.op, arpSpa: a.spa, arpTpa: a.tpa, arpSha: a.sha } : a;
  }
  let proto: number, off: number, len: number, fragment: boolean, later: boolean;
  if (e.ethertype === ETHERTYPE_IPV4) {
    const h = parseIpv4(b, e.payloadOffset);
    if (!h.ok) return h;
    Object.assign(s, { ipSrc: h.src, ipDst: h.dst, ttl: h.ttl });
    proto = h.protocol; off = h.payloadOffset; len = h.payloadLength;
    fragment = (h.flags & 1) === 1 || h.fragmentOffset > 0; later = h.fragmentOffset > 0;
  } else if (e.ethertype === ETHERTYPE_IPV6) {
    const h = parseIpv6(b, e.payloadOffset);
    if (!h.ok) return h;
    Object.assign(s, { ipSrcOffset: h.srcOffset, ttl: h.hopLimit });
    proto = h.protocol; off = h.upperOffset; len = h.upperLength;
    fragment = h.fragment !== null; later = (h.fragment?.offset ?? 0) > 0;
  } else {
    return s;
  }
  Object.assign(s, { ipProtocol: proto, fragment, laterFragment: later });
  if (later) return s;
  Object.assign(s, { l4Offset: off, l4Length: len });
  if (fragment) return s;
  if (proto === IPPROTO_UDP) {
    const u = parseUdp(b, off, len);
    if (!u.ok) return u;
    Object.assign(s, { srcPort: u.srcPort, dstPort: u.dstPort });
    if (u.dstPort === 67 || u.dstPort === 68) {
      const d = parseDhcp(b, u.payloadOffset, u.payloadLength);
      return d.ok ? { ...s, dhcpOp: d.op, dhcpMessageType: d.messageType, dhcpFromServer: d.op === BOOTREPLY || isDhcpServerMessageType(d.messageType) } : d;
    }
    if (u.dstPort === GRE_UDP_PORT) {
      const g = parseGre(b, u.payloadOffset, u.payloadLength);
      return g.ok ? { ...s, greKey: g.key, greProtocol: g.protocol, greInnerOffset: g.payloadOffset } : g;
    }
  } else if (proto === IPPROTO_TCP) {
    const t = parseTcp(b, off, len);
    if (!t.ok) return t;
    Object.assign(s, { srcPort: t.srcPort, dstPort: t.dstPort, tcpFlags: t.flags });
  } else if (proto === IPPROTO_ICMP) {
    const i = parseIcmpv4(b, off, len);
    if (!i.ok) return i;
    Object.assign(s, { icmpType: i.type, icmpCode: i.code });
  } else if (proto === IPPROTO_ICMPV6) {
    const i = parseIcmpv6(b, off, len);
    if (!i.ok) return i;
    Object.assign(s, { icmpType: i.type, icmpCode: i.code, ndTargetOffset: i.targetOffset, ndSourceLinkAddr: i.sourceLinkAddr, ndTargetLinkAddr: i.targetLinkAddr });
  } else if (proto === IPPROTO_GRE) {
    const g = parseGre(b, off, len);
    return g.ok ? { ...s, greKey: g.key, greProtocol: g.protocol, greInnerOffset: g.payloadOffset } : g;
  }
  return s;
}

function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 4294967296; };
}

test('classifier and chained per-protocol parsers agree on samples and mutations', () => {
  const base = samples().map((s) => s.frame);
  const r = rng(12345);
  const iterations = process.env.VMHOST_LONG === '1' ? 400_000 : 10_000;
  let failed = 0;
  for (let i = 0; i < iterations; i++) {
    let b = base[i % base.length]!.slice();
    if (i >= base.length) {
      if (r() < 0.4) b = b.slice(0, Math.floor(r() * b.length));
      for (let k = Math.floor(r() * 3); k > 0 && b.length; k--) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
    }
    const f = parseFrame(b);
    const c = chain(b);
    const where = `iteration ${i}: ${Buffer.from(b).toString('hex')}`;
    if (c.ok === false) {
      assert.deepEqual([f.ok, f.reason, f.layer, f.offset], [false, c.reason, c.layer, c.offset], where);
      failed++;
      continue;
    }
    assert.equal(f.ok, true, `${where}: classifier said ${f.reason}`);
    for (const [k, v] of Object.entries(c)) assert.equal(f[k as keyof typeof f], v, `${where}: ${k}`);
  }
  assert.ok(failed > iterations / 10 && failed < iterations * 0.9, `both verdicts exercised (${failed} malformed of ${iterations})`);
});
