// Helpers for this module's unit tests (not exported from index.ts): frame builders over
// src/packet, in-process ports that record what they receive, a socket test client that
// speaks the stream-netdev framing, and a settable clock.
import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import {
  buildEthernet, buildArp, buildIpv4, buildUdp, buildTcp, buildIcmpv4Echo, buildDhcp, ipv4ToBytes, parseMac, parseIpv4Address,
  ETHERTYPE_ARP, ETHERTYPE_IPV4, IPPROTO_UDP, IPPROTO_TCP, IPPROTO_ICMP, ARP_REQUEST, ARP_REPLY, BOOTREPLY, DHCPOFFER,
} from '../packet/index.ts';
import { FrameDecoder, encodeFrame } from './framing.ts';
import { VirtualSwitch } from './index.ts'; // index registers the built-in extensions
import type { PortPolicyPatch } from './policy.ts';
import type { SwitchSettingsInput } from './settings.ts';

export const BCAST = 'ff:ff:ff:ff:ff:ff';
export const mac = (n: number): string => `52:54:00:00:00:${n.toString(16).padStart(2, '0')}`;
export const ip = (n: number): string => `10.0.0.${n}`;

export function eth(src: string, dst: string, opts: { vlan?: number; ethertype?: number; payload?: Uint8Array } = {}): Uint8Array {
  return buildEthernet({
    src: parseMac(src), dst: parseMac(dst), ethertype: opts.ethertype ?? 0x88b5,
    ...(opts.vlan !== undefined ? { vlan: { vid: opts.vlan } } : {}), payload: opts.payload ?? new Uint8Array(46),
  });
}

export function arp(op: 'request' | 'reply', sha: string, spa: string, tpa: string, opts: { dst?: string; src?: string; tha?: string; vlan?: number } = {}): Uint8Array {
  const payload = buildArp({ op: op === 'request' ? ARP_REQUEST : ARP_REPLY, sha: parseMac(sha), spa: parseIpv4Address(spa), tha: parseMac(opts.tha ?? '00:00:00:00:00:00'), tpa: parseIpv4Address(tpa) });
  return eth(opts.src ?? sha, opts.dst ?? BCAST, { ethertype: ETHERTYPE_ARP, payload, ...(opts.vlan !== undefined ? { vlan: opts.vlan } : {}) });
}

export function udp(srcMac: string, dstMac: string, srcIp: string, dstIp: string, sport: number, dport: number, data: Uint8Array = new Uint8Array(18), vlan?: number): Uint8Array {
  const s = parseIpv4Address(srcIp), d = parseIpv4Address(dstIp);
  const u = buildUdp({ srcPort: sport, dstPort: dport, payload: data, src: ipv4ToBytes(s), dst: ipv4ToBytes(d) });
  return eth(srcMac, dstMac, { ethertype: ETHERTYPE_IPV4, payload: buildIpv4({ src: s, dst: d, protocol: IPPROTO_UDP, payload: u }), ...(vlan !== undefined ? { vlan } : {}) });
}

export function tcp(srcMac: string, dstMac: string, srcIp: string, dstIp: string, sport: number, dport: number, flags: number): Uint8Array {
  const s = parseIpv4Address(srcIp), d = parseIpv4Address(dstIp);
  const t = buildTcp({ srcPort: sport, dstPort: dport, flags, src: ipv4ToBytes(s), dst: ipv4ToBytes(d) });
  return eth(srcMac, dstMac, { ethertype: ETHERTYPE_IPV4, payload: buildIpv4({ src: s, dst: d, protocol: IPPROTO_TCP, payload: t }) });
}

export function ping(srcMac: string, dstMac: string, srcIp: string, dstIp: string, size = 56): Uint8Array {
  const s = parseIpv4Address(srcIp), d = parseIpv4Address(dstIp);
  const icmp = buildIcmpv4Echo({ type: 8, id: 1, seq: 1, data: new Uint8Array(size) });
  return eth(srcMac, dstMac, { ethertype: ETHERTYPE_IPV4, payload: buildIpv4({ src: s, dst: d, protocol: IPPROTO_ICMP, payload: icmp }) });
}

/** A DHCP offer, broadcast unless `dstMac` (an offer unicast to the client's MAC). */
export function dhcpOffer(serverMac: string, serverIp: string, clientMac: string, dstMac = BCAST): Uint8Array {
  const body = buildDhcp({ op: BOOTREPLY, xid: 42, chaddr: parseMac(clientMac), messageType: DHCPOFFER, yiaddr: parseIpv4Address('10.0.0.50') });
  return udp(serverMac, dstMac, serverIp, '255.255.255.255', 67, 68, body as Uint8Array<ArrayBuffer>);
}

export class Clock {
  t = 1_000_000;
  now = (): number => this.t;
  advance(ms: number): void { this.t += ms; }
}

/** A switch whose ports are in-process sinks recording what each port receives. */
export class Bench {
  readonly got = new Map<string, Uint8Array[]>();
  readonly clock = new Clock();
  readonly events: unknown[] = [];
  sw!: VirtualSwitch;

  /** `flowCache`: false for a switch without the microflow cache (the differential test's reference). */
  static async create(settings: Partial<SwitchSettingsInput> = {}, realClock = false, flowCache = true): Promise<Bench> {
    const b = new Bench();
    b.sw = await VirtualSwitch.create({ name: 'test', type: 'Private', ...settings }, {
      ...(realClock ? {} : { now: b.clock.now }), onEvent: (e) => b.events.push(e), flowCache,
    });
    return b;
  }

  async port(id: string, policy: PortPolicyPatch = {}): Promise<void> {
    this.got.set(id, []);
    await this.sw.addPort({ id, policy, sink: (f) => this.got.get(id)!.push(Uint8Array.prototype.slice.call(f)) });
  }

  send(id: string, frame: Uint8Array): void { this.sw.inject(id, frame); }

  /** Frames received by each port since the last call, then cleared. */
  take(id: string): Uint8Array[] { const f = this.got.get(id)!; this.got.set(id, []); return f; }

  clear(): void { for (const k of this.got.keys()) this.got.set(k, []); }

  /** Which ports received anything since the last clear (sorted). */
  receivers(): string[] { return [...this.got].filter(([, f]) => f.length > 0).map(([k]) => k).sort(); }

  drops(id: string): Record<string, number> { return this.sw.portStats(id).drops; }
}

/** A test peer on a port socket, framing like QEMU's stream netdev. */
export class TestNic {
  readonly frames: Buffer[] = [];
  private readonly dec = new FrameDecoder();
  closed = false;
  private constructor(readonly sock: Socket) {
    sock.on('data', (c: Buffer) => this.dec.push(c, (f) => this.frames.push(Buffer.from(f))));
    sock.on('close', () => { this.closed = true; });
    sock.on('error', () => {});
  }

  static connect(path: string): Promise<TestNic> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      s.once('connect', () => resolve(new TestNic(s)));
      s.once('error', reject);
    });
  }

  send(frame: Uint8Array): void { this.sock.write(encodeFrame(frame)); }
  sendRaw(bytes: Uint8Array): void { this.sock.write(bytes); }

  async waitFrames(n: number, timeoutMs = 2000): Promise<Buffer[]> {
    const t0 = Date.now();
    while (this.frames.length < n) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`expected ${n} frames, got ${this.frames.length}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return this.frames;
  }

  close(): void { this.sock.destroy(); }
}

export async function until(pred: () => boolean, timeoutMs = 2000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A UDP port on loopback that is free now (bound to port 0, then released). */
export async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((ok, fail) => { s.once('error', fail); s.bind(0, '127.0.0.1', ok); });
  const { port } = s.address();
  await new Promise<void>((ok) => s.close(ok));
  return port;
}

/** Two External switches named `name` whose UDP uplinks on loopback face each other: two hosts' provider network. */
export async function udpJoinedSwitches(name = 'ext'): Promise<[VirtualSwitch, VirtualSwitch]> {
  const pa = await freeUdpPort();
  let pb = await freeUdpPort();
  while (pb === pa) pb = await freeUdpPort();
  const a = await VirtualSwitch.create({ name, type: 'External', uplink: { localAddress: '127.0.0.1', localPort: pa, remoteAddress: '127.0.0.1', remotePort: pb } });
  const b = await VirtualSwitch.create({ name, type: 'External', uplink: { localAddress: '127.0.0.1', localPort: pb, remoteAddress: '127.0.0.1', remotePort: pa } });
  return [a, b];
}
