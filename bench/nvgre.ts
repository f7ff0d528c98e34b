// NVGRE through the switch, in-process (inject → sink, no sockets): frames/s and main-thread
// CPU ns per frame of
//   plain   port → port, default forwarding, no extension (the baseline);
//   vsid    port → port in one virtual subnet on this host, through vmhost.hnv;
//   encap   port → the uplink: looked up, encapsulated (RFC 7637) and handed to the uplink,
//           whose UDP socket is cut off here (its send replaced by a no-op: the bench measures
//           the switch, not the kernel's UDP);
//   decap   NVGRE injected on the uplink → checked, decapsulated, to the VM port;
// and the encoder alone (encodeNvgre, µs per frame; 2.58 µs when it copied the frame 3×).
// Ratios against plain: the goal is encapsulation costing ≤ 20 % (encap/plain and decap/plain ≥ 0.8).
// 128-byte UDP frames, one flow per destination MAC in turn.
// Run: node --import tsx bench/nvgre.ts [seconds per measurement, default 3] [rounds, default 3]
import { readFileSync } from 'node:fs';
import { buildEthernet, buildIpv4, buildUdp, encodeNvgre, ipv4ToBytes, macFromNumber, parseIpv4Address, ETHERTYPE_IPV4, IPPROTO_UDP } from '../src/packet/index.ts';
import { UPLINK_PORT_ID, VirtualSwitch } from '../src/switch/index.ts';
import { HNV_EXTENSION, paMac } from '../src/hnv/index.ts';
import { addLookupRecord, addProviderAddress, emptyPolicy, lookupRecord, providerAddress, type HnvPolicy } from '../src/hnv/policy.ts';

const seconds = Number(process.argv[2] ?? 3);
const rounds = Number(process.argv[3] ?? 3);
const VSID = 5001;
const LOCAL = 0x525400000001, PEER = 0x525400000002;
const PA_HERE = '192.168.100.1', PA_THERE = '192.168.100.2';

function udpFrame(src: number, dst: number, size = 128): Uint8Array {
  const s = 0x0a000001, d = 0x0a000002;
  const u = buildUdp({ srcPort: 40000, dstPort: 5001, payload: new Uint8Array(size - 42), src: ipv4ToBytes(s), dst: ipv4ToBytes(d) });
  return buildEthernet({ src: macFromNumber(src), dst: macFromNumber(dst), ethertype: ETHERTYPE_IPV4, payload: buildIpv4({ src: s, dst: d, protocol: IPPROTO_UDP, payload: u }) });
}

function mainThreadCpuNs(): number {
  return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]);
}

function policy(): HnvPolicy {
  let p = addProviderAddress(emptyPolicy(), providerAddress({ ProviderAddress: PA_HERE, InterfaceIndex: 1, PrefixLength: 24 }));
  const mac = (n: number): string => n.toString(16).padStart(12, '0');
  p = addLookupRecord(p, lookupRecord({ CustomerAddress: '10.0.0.1', VirtualSubnetID: VSID, MACAddress: mac(LOCAL), ProviderAddress: PA_HERE, Rule: 'TranslationMethodEncap' }));
  p = addLookupRecord(p, lookupRecord({ CustomerAddress: '10.0.0.2', VirtualSubnetID: VSID, MACAddress: mac(PEER), ProviderAddress: PA_THERE, Rule: 'TranslationMethodEncap' }));
  return p;
}

type Kind = 'plain' | 'vsid' | 'encap' | 'decap';

async function rate(kind: Kind): Promise<{ rate: number; cpuNs: number }> {
  const sw = await VirtualSwitch.create({ name: 'bench', type: 'External', uplink: { localAddress: '127.0.0.1', localPort: 0, remoteAddress: '127.0.0.1', remotePort: 9 } });
  let delivered = 0;
  const uplink = (sw as unknown as { ports: Map<string, { io: { send(): string } }> }).ports.get(UPLINK_PORT_ID)!;
  uplink.io.send = () => { delivered++; return 'ok'; };
  const vsid = kind === 'plain' ? {} : { virtualSubnetId: VSID };
  await sw.addPort({ id: 'a', policy: { mac: macFromNumber(LOCAL).reduce((s, b, i) => s + (i ? ':' : '') + b.toString(16).padStart(2, '0'), ''), ...vsid }, sink: () => { delivered++; } });
  await sw.addPort({ id: 'b', policy: kind === 'encap' || kind === 'decap' ? vsid : { mac: '52:54:00:00:00:02', ...vsid }, sink: () => { delivered++; } });
  if (kind !== 'plain') sw.addExtension(HNV_EXTENSION, { config: { policy: policy() } as unknown as Record<string, unknown> });
  // b's MAC learned (plain, vsid) before the timed run.
  if (kind === 'plain' || kind === 'vsid') sw.inject('b', udpFrame(PEER, LOCAL));
  const inner = udpFrame(kind === 'decap' ? PEER : LOCAL, kind === 'decap' ? LOCAL : PEER);
  let frame = inner;
  if (kind === 'decap') {
    const e = encodeNvgre({ outerDst: paMac(parseIpv4Address(PA_HERE)), outerSrc: paMac(parseIpv4Address(PA_THERE)), providerSrc: parseIpv4Address(PA_THERE), providerDst: parseIpv4Address(PA_HERE), vsid: VSID, inner });
    if (!e.ok) throw new Error(e.detail);
    frame = e.frame;
  }
  const from = kind === 'decap' ? UPLINK_PORT_ID : 'a';
  const copy = Buffer.from(frame);
  const run = (n: number): void => { for (let i = 0; i < n; i++) { copy.set(frame); sw.inject(from, copy); } };
  run(100_000);
  delivered = 0;
  let count = 0;
  const t0 = performance.now(), c0 = mainThreadCpuNs();
  while (performance.now() - t0 < seconds * 1000) { run(50_000); count += 50_000; }
  const result = { rate: count / ((performance.now() - t0) / 1000), cpuNs: (mainThreadCpuNs() - c0) / count };
  if (delivered !== count) throw new Error(`${kind}: delivered ${delivered} of ${count} (${JSON.stringify(sw.stats().drops)})`);
  await sw.close();
  return result;
}

function encoderUs(): number {
  const inner = udpFrame(LOCAL, PEER);
  const f = { outerDst: paMac(1), outerSrc: paMac(2), providerSrc: 0x0a000001, providerDst: 0x0a000002, vsid: VSID, inner };
  for (let i = 0; i < 100_000; i++) encodeNvgre(f);
  const n = 500_000, c0 = mainThreadCpuNs();
  for (let i = 0; i < n; i++) encodeNvgre(f);
  return (mainThreadCpuNs() - c0) / n / 1000;
}

const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
console.log(`nvgre bench: ${seconds} s × ${rounds} rounds, load average ${load}`);
for (let r = 1; r <= rounds; r++) {
  const out: Record<string, { rate: number; cpuNs: number }> = {};
  for (const k of ['plain', 'vsid', 'encap', 'decap'] as const) out[k] = await rate(k);
  const p = out.plain!;
  const row = (k: Kind): string => `${k} ${(out[k]!.rate / 1e6).toFixed(2)} M/s ${out[k]!.cpuNs.toFixed(0)} ns (×${(out[k]!.rate / p.rate).toFixed(2)} by rate, ×${(p.cpuNs / out[k]!.cpuNs).toFixed(2)} by CPU)`;
  console.log(`round ${r}: ${(['plain', 'vsid', 'encap', 'decap'] as const).map(row).join(' | ')} | encoder ${encoderUs().toFixed(3)} µs/frame`);
}
