import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFrame, parseFrameInto, FrameInfo } from './classify.ts';
import { samples } from './samples.ts';
import { formatIpv6 } from './address.ts';

test('parseFrame yields the expected fields for every sample frame', () => {
  for (const s of samples()) {
    const f = parseFrame(s.frame);
    assert.equal(f.ok, true, `${s.name}: ${f.reason} at ${f.offset}`);
    for (const [k, v] of Object.entries(s.expect)) assert.equal(f[k as keyof FrameInfo], v, `${s.name}.${k}`);
  }
});

test('parseFrameInto resets every field between frames', () => {
  const all = samples();
  const reused = new FrameInfo();
  for (const s of [...all, ...all.reverse()]) {
    parseFrameInto(s.frame, reused);
    assert.deepEqual({ ...reused }, { ...parseFrame(s.frame) }, s.name);
  }
});

test('ND target and IPv6 addresses are offsets into the frame', () => {
  const ns = samples().find((s) => s.name === 'icmpv6-ns')!;
  const f = parseFrame(ns.frame);
  assert.equal(formatIpv6(ns.frame, f.ndTargetOffset), 'fe80::215:5dff:fe00:b');
  assert.equal(formatIpv6(ns.frame, f.ipDstOffset), 'ff02::1:ff00:b');
});

test('malformed frames give a drop reason, layer and offset', () => {
  const by = (n: string): Uint8Array => samples().find((s) => s.name === n)!.frame.slice();
  const cases: [string, Uint8Array, string, string, number][] = [
    ['short', new Uint8Array(10), 'truncated-ethernet', 'ethernet', 0],
    ['vlan cut', by('vlan-arp-request').subarray(0, 16), 'truncated-vlan', 'vlan', 14],
    ['arp cut', by('arp-reply').subarray(0, 30), 'truncated-arp', 'arp', 14],
    ['ipv4 cut', by('tcp-syn').subarray(0, 30), 'truncated-ipv4', 'ipv4', 14],
    ['ipv4 total length lies', by('tcp-syn').subarray(0, 60), 'truncated-ipv4', 'ipv4', 16],
    ['ipv6 payload length lies', by('ipv6-tcp').subarray(0, 70), 'bad-ipv6-payload-length', 'ipv6', 18],
    ['tcp offset lies', (() => { const b = by('tcp-syn'); b[14 + 20 + 12] = 0xf0; return b; })(), 'bad-tcp-data-offset', 'tcp', 46],
    ['udp length lies', (() => { const b = by('ipv6-hbh-udp'); b[14 + 48 + 4] = 0x40; return b; })(), 'bad-udp-length', 'udp', 66],
    ['nd option len 0', (() => { const b = by('icmpv6-na'); b[14 + 40 + 24 + 1] = 0; return b; })(), 'bad-nd-option', 'icmpv6', 78],
    ['dhcp cookie', (() => { const b = by('dhcp-discover'); b[14 + 28 + 236] = 0; return b; })(), 'bad-dhcp-cookie', 'dhcp', 278],
    ['gre version', (() => { const b = by('nvgre'); b[14 + 20 + 1] = 1; return b; })(), 'unsupported-gre-version', 'gre', 34],
  ];
  for (const [name, frame, reason, layer, offset] of cases) {
    const f = parseFrame(frame);
    assert.deepEqual([f.ok, f.reason, f.layer, f.offset], [false, reason, layer, offset], name);
  }
});

test('giant frames are refused only when a maximum is given', () => {
  const big = new Uint8Array(9100); big.set(samples()[1]!.frame);
  assert.ok(parseFrame(big).ok);
  const f = parseFrame(big, 9018);
  assert.deepEqual([f.ok, f.reason, f.layer, f.offset], [false, 'giant-frame', 'ethernet', 9018]);
});

test('DHCP server messages are flagged', () => {
  const s = samples();
  assert.equal(parseFrame(s.find((x) => x.name === 'dhcp-offer')!.frame).dhcpFromServer, true);
  assert.equal(parseFrame(s.find((x) => x.name === 'dhcp-discover')!.frame).dhcpFromServer, false);
});

test('unknown ethertypes and IP protocols are fine, not malformed', () => {
  const b = samples()[1]!.frame.slice();
  b[12] = 0x88; b[13] = 0xcc; // LLDP
  const f = parseFrame(b);
  assert.ok(f.ok); assert.equal(f.ethertype, 0x88cc); assert.equal(f.ipVersion, 0);
});
