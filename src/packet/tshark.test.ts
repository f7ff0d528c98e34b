// tshark as the oracle: a pcap of frames made by our builders (and written by our pcap
// encoder) must decode with the fields we set, every checksum verified good, and no
// malformed-packet or other warning/error expert info. Skipped when tshark is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatIpv4, formatMacNumber } from './address.ts';
import { NvgreTemplate, decodeNvgre, encodeNvgre, nvgreTemplate } from './nvgre.ts';
import { samples } from './samples.ts';
import { pcapHeader, pcapRecord } from './pcap.ts';

const hasTshark = (() => {
  try { execFileSync('tshark', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; }
})();

const CHECKSUMS = ['-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE'];

// Per sample: the protocol stack tshark must see, and field values it must decode.
const EXPECT: Record<string, { protocols: string; fields: Record<string, string> }> = {
  'vlan-arp-request': { protocols: 'eth:ethertype:vlan:ethertype:arp', fields: { 'vlan.id': '10', 'vlan.priority': '3', 'arp.opcode': '1', 'arp.src.proto_ipv4': '192.168.10.10', 'arp.dst.proto_ipv4': '192.168.10.11' } },
  'arp-reply': { protocols: 'eth:ethertype:arp', fields: { 'arp.opcode': '2', 'arp.src.hw_mac': '00:15:5d:00:00:0b', 'arp.dst.hw_mac': '00:15:5d:00:00:0a' } },
  'gratuitous-arp': { protocols: 'eth:ethertype:arp', fields: { 'arp.isgratuitous': '1', 'arp.src.proto_ipv4': '192.168.10.11' } },
  'dhcp-discover': { protocols: 'eth:ethertype:ip:udp:dhcp', fields: { 'dhcp.option.dhcp': '1', 'dhcp.type': '1', 'dhcp.id': '0xdeadbeef', 'dhcp.hw.mac_addr': '00:15:5d:00:00:0a', 'udp.dstport': '67' } },
  'dhcp-offer': { protocols: 'eth:ethertype:ip:udp:dhcp', fields: { 'dhcp.option.dhcp': '2', 'dhcp.type': '2', 'dhcp.ip.your': '192.168.10.10', 'dhcp.option.dhcp_server_id': '192.168.10.11', 'dhcp.option.router': '192.168.10.11' } },
  'tcp-syn': { protocols: 'eth:ethertype:ip:tcp', fields: { 'tcp.flags.syn': '1', 'tcp.flags.ack': '0', 'tcp.srcport': '49152', 'tcp.dstport': '80', 'tcp.seq_raw': '1000', 'tcp.options.mss_val': '1460', 'ip.src': '192.168.10.10', 'ip.flags.df': '1' } },
  'icmp-echo-router-alert': { protocols: 'eth:ethertype:ip:icmp:data', fields: { 'icmp.type': '8', 'icmp.ident': '7', 'icmp.seq': '1', 'ip.hdr_len': '24', 'ip.opt.type': '148' } },
  'ipv4-first-fragment': { protocols: 'eth:ethertype:ip:data', fields: { 'ip.flags.mf': '1', 'ip.frag_offset': '0', 'ip.id': '0x4242', 'ip.proto': '17' } },
  'icmpv6-ra': { protocols: 'eth:ethertype:ipv6:icmpv6', fields: { 'icmpv6.type': '134', 'icmpv6.opt.linkaddr': '00:15:5d:00:00:0a', 'icmpv6.opt.mtu': '1500', 'icmpv6.opt.prefix': '2001:db8:1::', 'icmpv6.opt.prefix.length': '64', 'icmpv6.nd.ra.flag.o': '1', 'icmpv6.nd.ra.router_lifetime': '1800', 'ipv6.hlim': '255' } },
  'icmpv6-rs': { protocols: 'eth:ethertype:ipv6:icmpv6', fields: { 'icmpv6.type': '133', 'icmpv6.opt.linkaddr': '00:15:5d:00:00:0b' } },
  'icmpv6-ns': { protocols: 'eth:ethertype:ipv6:icmpv6', fields: { 'icmpv6.type': '135', 'icmpv6.nd.ns.target_address': 'fe80::215:5dff:fe00:b', 'icmpv6.opt.type': '1', 'ipv6.dst': 'ff02::1:ff00:b', 'eth.dst': '33:33:ff:00:00:0b' } },
  'icmpv6-na': { protocols: 'eth:ethertype:ipv6:icmpv6', fields: { 'icmpv6.type': '136', 'icmpv6.nd.na.target_address': 'fe80::215:5dff:fe00:b', 'icmpv6.nd.na.flag.s': '1', 'icmpv6.nd.na.flag.o': '1', 'icmpv6.nd.na.flag.r': '0', 'icmpv6.opt.type': '2', 'icmpv6.opt.linkaddr': '00:15:5d:00:00:0b' } },
  'icmpv6-redirect': { protocols: 'eth:ethertype:ipv6:icmpv6:ipv6', fields: { 'icmpv6.type': '137', 'icmpv6.nd.rd.target_address': 'fe80::1', 'icmpv6.rd.na.destination_address': '2001:db8:2::1', 'icmpv6.opt.type': '2,4' } },
  'icmpv6-echo': { protocols: 'eth:ethertype:ipv6:icmpv6:data', fields: { 'icmpv6.type': '128', 'icmpv6.echo.identifier': '0x0001', 'icmpv6.echo.sequence_number': '2' } },
  'ipv6-hbh-udp': { protocols: 'eth:ethertype:ipv6:ipv6.hopopts:udp:data', fields: { 'udp.srcport': '40001', 'udp.dstport': '9999', 'ipv6.src': '2001:db8:1::10', 'ipv6.nxt': '0' } },
  'ipv6-tcp': { protocols: 'eth:ethertype:ipv6:tcp', fields: { 'tcp.flags.syn': '1', 'tcp.dstport': '443' } },
  'ipv6-later-fragment': { protocols: 'eth:ethertype:ipv6:ipv6.fraghdr:data', fields: { 'ipv6.fraghdr.offset': '1', 'ipv6.fraghdr.ident': '0x00000099', 'ipv6.fraghdr.more': '0' } },
  // No NVGRE dissector in tshark: read the GRE key (VSID 5001 << 8 | FlowID 0x2a).
  'nvgre': { protocols: 'eth:ethertype:ip:gre:eth:ethertype:ip:icmp', fields: { 'gre.key': '0x0013892a', 'gre.proto': '0x6558', 'gre.flags.key': '1', 'gre.flags.checksum': '0', 'icmp.ident': '9', 'ip.dst': '10.0.0.2,192.168.10.11' } },
  'gre-in-udp': { protocols: 'eth:ethertype:ip:udp:gre:eth:ethertype:ip:icmp', fields: { 'udp.dstport': '4754', 'udp.srcport': '50123', 'gre.key': '0x00138901', 'gre.proto': '0x6558', 'icmp.type': '8' } },
};

test('tshark decodes every built frame with our fields, good checksums, no warnings', { skip: hasTshark || process.env.CI === 'true' ? false : 'tshark not installed (scripts/install-deps.sh)' }, () => {
  const all = samples();
  assert.deepEqual(all.map((s) => s.name).sort(), Object.keys(EXPECT).sort(), 'every sample has tshark expectations');
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-packet-'));
  try {
    const file = join(dir, 'samples.pcap');
    const parts = [pcapHeader({ nanoseconds: true, snaplen: 262144 })];
    all.forEach((s, i) => parts.push(pcapRecord(s.frame, 1_700_000_000_000_000_000n + BigInt(i) * 1_000n, { nanoseconds: true, snaplen: 262144 })));
    writeFileSync(file, Buffer.concat(parts));

    const expert = execFileSync('tshark', ['-r', file, '-q', '-z', 'expert,warn', ...CHECKSUMS], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    assert.doesNotMatch(expert, /Errors \(|Warnings \(|Malformed/, expert);

    const fieldNames = [...new Set(Object.values(EXPECT).flatMap((e) => Object.keys(e.fields)))];
    const status = ['ip.checksum.status', 'udp.checksum.status', 'tcp.checksum.status', 'icmp.checksum.status', 'icmpv6.checksum.status'];
    const cols = ['frame.protocols', '_ws.malformed', '_ws.expert.severity', ...status, ...fieldNames];
    const out = execFileSync('tshark', ['-r', file, '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=,', ...CHECKSUMS, ...cols.flatMap((c) => ['-e', c])],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const rows = out.trimEnd().split('\n').map((l) => l.split('\t'));
    assert.equal(rows.length, all.length);
    all.forEach((s, i) => {
      const row = new Map(cols.map((c, j) => [c, rows[i]![j] ?? '']));
      const e = EXPECT[s.name]!;
      assert.equal(row.get('frame.protocols'), e.protocols, `${s.name}: protocols`);
      assert.equal(row.get('_ws.malformed'), '', `${s.name}: malformed`);
      for (const st of status) {
        const v = row.get(st)!;
        if (v !== '') assert.match(v, /^1(,1)*$/, `${s.name}: ${st} = ${v} (1 = good)`);
      }
      for (const [k, v] of Object.entries(e.fields)) assert.equal(row.get(k), v, `${s.name}: ${k}`);
    });
    // Checksums were really verified: the TCP, UDP, IPv4 and ICMPv6 frames report status "good".
    const verified = (st: string): number => rows.filter((r) => r[cols.indexOf(st)]!.startsWith('1')).length;
    for (const st of status) assert.ok(verified(st) > 0, `${st} verified somewhere`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// tshark has no NVGRE dissector, but its GRE dissector shows the key and hands protocol 0x6558
// (Transparent Ethernet Bridging) to Ethernet, so the customer frame decodes as well: our
// encoder's frames must read back in tshark as our decoder reads them — every other one made as
// a cached flow makes it (NvgreTemplate.write into a lent slot of a reused staging buffer).
test('tshark agrees with decodeNvgre on encoded frames: GRE key, provider and customer addresses', { skip: hasTshark || process.env.CI === 'true' ? false : 'tshark not installed (scripts/install-deps.sh)' }, () => {
  const inner = samples().filter((s) => s.name === 'tcp-syn' || s.name === 'arp-reply' || s.name === 'icmpv6-echo').map((s) => s.frame);
  const stage = new Uint8Array(4096).fill(0xee);
  const frames = Array.from({ length: 24 }, (_, i) => {
    const f = {
      outerDst: new Uint8Array([2, 0, 0, 0, 4, 2]), outerSrc: new Uint8Array([2, 0, 0, 0, 4, 1]), providerSrc: 0xc0a80401 + i, providerDst: 0xc0a80402,
      vsid: 5001 + i * 65_521, flowId: (i * 37) & 0xff, inner: inner[i % inner.length]!, outerVlan: i % 4 === 0 ? 20 : undefined,
    };
    if (i % 2 === 1) {
      const t = nvgreTemplate(f);
      assert.ok(t instanceof NvgreTemplate);
      return t.write(f.vsid, f.flowId, f.inner, stage.subarray(100, 100 + t.frameLength(f.inner.length))).slice();
    }
    const e = encodeNvgre(f);
    assert.ok(e.ok);
    return e.frame;
  });
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-nvgre-'));
  try {
    const file = join(dir, 'nvgre.pcap');
    writeFileSync(file, Buffer.concat([pcapHeader({ nanoseconds: true, snaplen: 262144 }), ...frames.map((f, i) => pcapRecord(f, 1_700_000_000_000_000_000n + BigInt(i), { nanoseconds: true, snaplen: 262144 }))]));
    const expert = execFileSync('tshark', ['-r', file, '-q', '-z', 'expert,warn', ...CHECKSUMS], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    assert.doesNotMatch(expert, /Errors \(|Warnings \(|Malformed/, expert);
    const cols = ['gre.key', 'gre.proto', 'eth.src', 'ip.src', 'ip.checksum.status', '_ws.malformed'];
    const out = execFileSync('tshark', ['-r', file, '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=,', ...CHECKSUMS, ...cols.flatMap((c) => ['-e', c])],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const rows = out.trimEnd().split('\n').map((l) => l.split('\t'));
    assert.equal(rows.length, frames.length);
    frames.forEach((f, i) => {
      const d = decodeNvgre(f);
      assert.ok(d.ok);
      const [key, proto, ethSrc, ipSrc, ipCsum, bad] = rows[i]!;
      assert.equal(Number(key), d.key, `frame ${i}: GRE key`);
      assert.equal(proto, '0x6558');
      assert.equal(ethSrc, `${formatMacNumber(d.outerSrc)},${formatMacNumber(d.innerSrc)}`, `frame ${i}: outer and customer source MAC`);
      assert.equal(ipSrc!.split(',')[0], formatIpv4(d.providerSrc), `frame ${i}: provider source address`);
      assert.match(ipCsum!, /^1/, `frame ${i}: outer IPv4 checksum good`);
      assert.equal(bad ?? '', '', `frame ${i}: not malformed`);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
