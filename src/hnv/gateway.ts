// The multitenant gateway, in the daemon (no gateway VM to boot; its HA can follow the cluster
// later): for each routing domain it serves, one port on the host's External switch in one of
// the domain's virtual subnets — what the 2012 R2 gateway VM's NIC was: a customer address
// with a lookup record (this host's PA, the port's MAC), the next hop of the domain's default
// customer route 0.0.0.0/0 — and one port on an Internal switch (the "datacenter").
// - From a VM (routed to the gateway's MAC by the distributed router, router.ts): in NAT mode
//   the source becomes the domain's external address and the TCP/UDP port or ICMP echo id a
//   free one of that address (nat-table.ts, keyed by routing domain, so overlapping CAs of two
//   tenants stay apart); in forwarding mode the packet goes unchanged. Either way TTL − 1, and
//   out on the datacenter switch to the destination's MAC (the datacenter is one on-link
//   segment: neighbours by ARP, up to 3 frames queued per unresolved address for 1 s, at most
//   256 addresses unresolved at once).
// - From the datacenter: a reply to an external address is translated back by the NAT table
//   entry (which names the routing domain) — nothing else enters a NAT domain; a packet to a
//   prefix of a forwarding-mode domain goes in unchanged. In goes to the distributed router
//   (GATEWAY_MAC) in the gateway's subnet, which routes it to the VM within the domain.
// - Never between domains: a VM's packet toward a forwarding-mode domain's customer prefix (the
//   datacenter would route it back in) or toward any external address of the gateway is
//   refused ('gw-cross-domain', 'gw-hairpin'). Toward a NAT-mode domain's prefix it may go out
//   — that address may well be the datacenter's — since nothing enters a NAT domain but a reply.
// Answers ARP for its external addresses on the datacenter switch. IPv4 fragments, ICMP other
// than echo and protocols other than TCP/UDP/ICMP are not translated. IPv6 (a domain's `ipv6`)
// is gateway6.ts's: routed in forwarding mode, NPTv6 in NAT mode. Every refusal
// is counted by reason (status().drops). Forwarding-mode domains must not overlap each other
// (the datacenter routes them by CA); NAT-mode ones may overlap anything. Depends on common,
// packet, switch (ports), policy, router (GATEWAY_MAC), router-icmp (its rate limit), nat-table,
// nat-rewrite, gateway6, datapath (CUSTOMER_MTU).
import {
  ARP_REPLY, ARP_REQUEST, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, buildArp, buildEthernet, formatIpv4, ipv4Mask, macFromNumber, parseCidr, parseFrame, parseIpv4Address, parseMac,
  type FrameInfo,
} from '../packet/index.ts';
import type { VirtualSwitch } from '../switch/index.ts';
import { VmhostError } from '../common/index.ts';
import type { HnvPolicy } from './policy.ts';
import { normalizeMacText, normalizeRdid } from './policy.ts';
import { GATEWAY_MAC } from './router.ts';
import { NatTable, type NatEntry } from './nat-table.ts';
import { decrementTtl, icmpEchoId, setAddress, setPort } from './nat-rewrite.ts';
import { Gateway6, type GatewayIpv6 } from './gateway6.ts';
import { IcmpErrors } from './router-icmp.ts';
import { CUSTOMER_MTU } from './datapath.ts';

export type GatewayMode = 'Nat' | 'Forwarding';

/** A routing domain the gateway serves. */
export interface GatewayDomain {
  readonly routingDomainId: string;
  readonly mode: GatewayMode;
  /** The gateway's port in the domain: its subnet, CA (the default route's next hop; it has a lookup record) and MAC. */
  readonly virtualSubnetId: number;
  readonly customerAddress: string;
  readonly macAddress: string;
  /** Its address on the datacenter switch: the NAT source in NAT mode, the next hop toward the domain in forwarding mode. */
  readonly externalAddress: string;
  /** The domain's IPv6 through the gateway, if it has any (gateway6.ts). */
  readonly ipv6?: GatewayIpv6;
}

export interface GatewayOptions {
  /** The External switch running vmhost.hnv (the tenant side). */
  readonly tenantSwitch: VirtualSwitch;
  /** The Internal switch standing for the datacenter. */
  readonly datacenterSwitch: VirtualSwitch;
  /** The gateway's MAC on the datacenter switch. */
  readonly datacenterMac: string;
  readonly domains: readonly GatewayDomain[];
  readonly policy: HnvPolicy;
  readonly now?: () => number;
}

const PROTO_ICMP = 1, PROTO_TCP = 6, PROTO_UDP = 17;
const ECHO_REQUEST = 8, ECHO_REPLY = 0;
const TCP_FIN = 0x01, TCP_RST = 0x04;
const ARP_QUEUE = 3, ARP_WAIT_MS = 1000, ARP_PENDING_MAX = 256;
export const GATEWAY_DATACENTER_PORT = 'hnv-gateway';
export const gatewayTenantPort = (vsid: number): string => `hnv-gateway-${vsid}`;

interface Domain extends GatewayDomain { readonly mac: number; readonly external: number; readonly port: string }

const macNumber = (text: string): number => parseInt(normalizeMacText(text), 16);

export class HnvGateway {
  private readonly domains: Domain[];
  private readonly byRdid = new Map<string, Domain>();
  /** The on-link customer prefixes of the forwarding-mode domains, as numbers (per-frame lookups). */
  private forwarded: { readonly d: Domain; readonly net: number; readonly mask: number }[] = [];
  private readonly nat: NatTable;
  private readonly v6: Gateway6<Domain>;
  private readonly dcMac: number;
  private readonly neighbours = new Map<number, number>();
  private readonly pending = new Map<number, { readonly frames: Uint8Array[]; readonly asked: number }>();
  private readonly now: () => number;
  private readonly drops: Record<string, number> = {};
  private out = 0;
  private in = 0;

  private constructor(private readonly o: GatewayOptions) {
    this.dcMac = macNumber(o.datacenterMac);
    this.now = o.now ?? Date.now;
    this.nat = new NatTable(this.now);
    this.domains = o.domains.map((d) => ({
      ...d, routingDomainId: normalizeRdid(d.routingDomainId), mac: macNumber(d.macAddress),
      external: parseIpv4Address(d.externalAddress), port: gatewayTenantPort(d.virtualSubnetId),
    }));
    for (const d of this.domains) {
      if (this.byRdid.has(d.routingDomainId)) throw new VmhostError('HNV_BAD_POLICY', `RoutingDomainID: the gateway already serves ${d.routingDomainId}`, { op: 'hnv-gateway', param: 'RoutingDomainID' });
      this.byRdid.set(d.routingDomainId, d);
    }
    const icmp = new IcmpErrors(this.now);
    this.v6 = new Gateway6<Domain>({
      datacenterMac: this.dcMac, customerMtu: CUSTOMER_MTU, icmp, now: this.now,
      toTenant: (d, b) => this.toTenant(d, b),
      toWire: (b) => o.datacenterSwitch.inject(GATEWAY_DATACENTER_PORT, b),
      drop: (reason) => this.drop(reason),
      passed: (outward) => { if (outward) this.out++; else this.in++; },
    }, this.domains);
    this.setPolicy(o.policy);
  }

  /** Adds the gateway's ports to both switches. */
  static async create(o: GatewayOptions): Promise<HnvGateway> {
    const g = new HnvGateway(o);
    const added: [VirtualSwitch, string][] = [];
    try {
      for (const d of g.domains) {
        await o.tenantSwitch.addPort({ id: d.port, policy: { mac: d.macAddress, virtualSubnetId: d.virtualSubnetId }, sink: (f) => g.fromTenant(d, f) });
        added.push([o.tenantSwitch, d.port]);
      }
      await o.datacenterSwitch.addPort({ id: GATEWAY_DATACENTER_PORT, policy: { mac: o.datacenterMac }, sink: (f) => g.fromDatacenter(f) });
    } catch (e) {
      for (const [sw, id] of added) await sw.removePort(id); // no half-made gateway
      throw e;
    }
    return g;
  }

  /** The host's policy changed (the forwarding-mode domains' customer routes decide what enters them and what is cross-domain). */
  setPolicy(policy: HnvPolicy): void {
    this.v6.setPolicy(policy);
    this.forwarded = [];
    for (const r of policy.customerRoutes) {
      const d = this.byRdid.get(r.routingDomainId);
      const c = parseCidr(r.destinationPrefix);
      if (d?.mode !== 'Forwarding' || r.nextHop !== '0.0.0.0' || c.version !== 4) continue;
      const mask = ipv4Mask(c.prefixLength);
      this.forwarded.push({ d, net: (c.address & mask) >>> 0, mask });
    }
  }

  private drop(reason: string): void { this.drops[reason] = (this.drops[reason] ?? 0) + 1; }

  /** The forwarding-mode domain with an on-link customer route to `ip` (a prefix of one of its subnets). */
  private forwardedTo(ip: number): Domain | undefined {
    return this.forwarded.find((x) => ((ip & x.mask) >>> 0) === x.net)?.d;
  }

  // ---- tenant → datacenter ----

  private fromTenant(d: Domain, frame: Uint8Array): void {
    const info = parseFrame(frame);
    if (info.dst !== d.mac) return; // the subnet's broadcasts reach the port too; not for the gateway
    if (info.ethertype === ETHERTYPE_IPV6) return this.v6.fromTenant(d, frame, info);
    const why = this.checkIp(info);
    if (why) return this.drop(why);
    // The gateway's own datacenter side is no way into any domain, this one's included.
    if (this.domains.some((x) => x.external === info.ipDst)) return this.drop('gw-hairpin');
    const other = this.forwardedTo(info.ipDst);
    if (other !== undefined && other !== d) return this.drop('gw-cross-domain');
    const b = Uint8Array.prototype.slice.call(frame) as Uint8Array;
    if (d.mode === 'Nat') {
      const key = this.flowOut(info, b);
      if (typeof key === 'string') return this.drop(key);
      const e = this.nat.outbound({ routingDomainId: d.routingDomainId, protocol: info.ipProtocol, ca: info.ipSrc, caPort: key.port, remote: info.ipDst, remotePort: key.remotePort }, d.external);
      if (!e) return this.drop('gw-ports-exhausted');
      if (info.ipProtocol === PROTO_TCP && (info.tcpFlags & (TCP_FIN | TCP_RST)) !== 0) this.nat.closing(e);
      setAddress(b, 'src', d.external);
      setPort(b, 'src', e.extPort);
    }
    decrementTtl(b);
    this.out++;
    this.toDatacenter(info.ipDst, b);
  }

  private checkIp(info: FrameInfo): string | undefined {
    if (info.ethertype !== ETHERTYPE_IPV4 || info.ipVersion !== 4) return 'gw-not-ipv4';
    if (!info.ok) return 'gw-malformed';
    if (info.fragment) return 'gw-fragment';
    if (info.ttl <= 1) return 'gw-ttl-expired';
    return undefined;
  }

  /** The flow's local port (ICMP: echo id) and remote port, or why it cannot be translated. */
  private flowOut(info: FrameInfo, b: Uint8Array): { port: number; remotePort: number } | string {
    if (info.ipProtocol === PROTO_ICMP) return info.icmpType === ECHO_REQUEST ? { port: icmpEchoId(b), remotePort: 0 } : 'gw-unsupported-protocol';
    if (info.ipProtocol === PROTO_TCP || info.ipProtocol === PROTO_UDP) return { port: info.srcPort, remotePort: info.dstPort };
    return 'gw-unsupported-protocol';
  }

  private toDatacenter(ip: number, b: Uint8Array): void {
    b.set(macFromNumber(this.dcMac), 6);
    const mac = this.neighbours.get(ip);
    if (mac !== undefined) {
      b.set(macFromNumber(mac), 0);
      this.o.datacenterSwitch.inject(GATEWAY_DATACENTER_PORT, b);
      return;
    }
    this.waitForArp(ip, b);
  }

  /** `b` waits for `ip`'s MAC: the first frame asks (ARP); a question unanswered for ARP_WAIT_MS is given up with what waited. */
  private waitForArp(ip: number, b: Uint8Array): void {
    const now = this.now();
    this.giveUp(now);
    const q = this.pending.get(ip);
    if (q ? q.frames.length >= ARP_QUEUE : this.pending.size >= ARP_PENDING_MAX) return this.drop('gw-arp-queue-full');
    if (q) { q.frames.push(b); return; }
    this.pending.set(ip, { frames: [b], asked: now });
    // Asked from the external address of the first domain: any of ours is answered the same.
    const sha = macFromNumber(this.dcMac);
    const arp = buildArp({ op: ARP_REQUEST, sha, spa: this.domains[0]!.external, tha: new Uint8Array(6), tpa: ip });
    this.o.datacenterSwitch.inject(GATEWAY_DATACENTER_PORT, buildEthernet({ dst: parseMac('ff:ff:ff:ff:ff:ff'), src: sha, ethertype: ETHERTYPE_ARP, payload: arp }));
  }

  // ---- datacenter → tenant ----

  private fromDatacenter(frame: Uint8Array): void {
    const info = parseFrame(frame);
    if (info.ethertype === ETHERTYPE_ARP) return this.arp(info);
    if (info.ethertype === ETHERTYPE_IPV6) return this.v6.fromDatacenter(frame, info);
    if (info.dst !== this.dcMac) return;
    const why = this.checkIp(info);
    if (why) return this.drop(why);
    const b = Uint8Array.prototype.slice.call(frame) as Uint8Array;
    let d: Domain | undefined;
    const natDomain = this.domains.find((x) => x.mode === 'Nat' && x.external === info.ipDst);
    if (natDomain) {
      const e = this.flowIn(info, b);
      if (!e) return this.drop('gw-no-translation');
      d = this.byRdid.get(e.routingDomainId)!;
      if (info.ipProtocol === PROTO_TCP && (info.tcpFlags & (TCP_FIN | TCP_RST)) !== 0) this.nat.closing(e);
      setAddress(b, 'dst', e.ca);
      setPort(b, 'dst', e.caPort);
    } else {
      d = this.forwardedTo(info.ipDst);
      if (!d) return this.drop('gw-no-route');
    }
    decrementTtl(b);
    this.in++;
    this.toTenant(d, b);
  }

  /** `b` into domain `d`'s subnet from the gateway's port, to the distributed router, which routes it to the VM. */
  private toTenant(d: Domain, b: Uint8Array): void {
    b.set(macFromNumber(GATEWAY_MAC), 0);
    b.set(macFromNumber(d.mac), 6);
    this.o.tenantSwitch.inject(d.port, b);
  }

  private flowIn(info: FrameInfo, b: Uint8Array): NatEntry | undefined {
    if (info.ipProtocol === PROTO_ICMP) return info.icmpType === ECHO_REPLY ? this.nat.inbound(info.ipDst, PROTO_ICMP, icmpEchoId(b), info.ipSrc, 0) : undefined;
    if (info.ipProtocol !== PROTO_TCP && info.ipProtocol !== PROTO_UDP) return undefined;
    return this.nat.inbound(info.ipDst, info.ipProtocol, info.dstPort, info.ipSrc, info.srcPort);
  }

  /** ARP on the datacenter switch: answers for our external addresses, learns neighbours that ask us or answer us, sends what waited for them. */
  private arp(info: FrameInfo): void {
    const ours = this.domains.some((d) => d.external === info.arpTpa);
    if (!ours) return;
    this.neighbours.set(info.arpSpa, info.arpSha);
    if (info.arpOp === ARP_REQUEST) {
      const sha = macFromNumber(this.dcMac), tha = macFromNumber(info.arpSha);
      this.o.datacenterSwitch.inject(GATEWAY_DATACENTER_PORT, buildEthernet({ dst: tha, src: sha, ethertype: ETHERTYPE_ARP, payload: buildArp({ op: ARP_REPLY, sha, spa: info.arpTpa, tha, tpa: info.arpSpa }) }));
    }
    const q = this.pending.get(info.arpSpa);
    if (q) { this.pending.delete(info.arpSpa); for (const b of q.frames) this.toDatacenter(info.arpSpa, b); }
  }

  /** Questions nobody answered within ARP_WAIT_MS are given up: what waited is dropped. */
  private giveUp(now: number): void {
    for (const [ip, x] of this.pending) {
      if (now - x.asked <= ARP_WAIT_MS) continue;
      this.pending.delete(ip);
      this.drops['gw-arp-unresolved'] = (this.drops['gw-arp-unresolved'] ?? 0) + x.frames.length;
    }
  }

  /** Takes the gateway's ports off both switches (its translations go with it). */
  async close(): Promise<void> {
    for (const d of this.domains) await this.o.tenantSwitch.removePort(d.port);
    await this.o.datacenterSwitch.removePort(GATEWAY_DATACENTER_PORT);
  }

  /** Expired NAT entries and unanswered ARP questions go (the daemon would call this on a timer; tests with their clock); returns the NAT entries removed. */
  sweep(): number {
    this.giveUp(this.now());
    return this.nat.sweep() + this.v6.sweep();
  }

  status(): Record<string, unknown> {
    return {
      domains: this.domains.map((d) => ({ routingDomainId: d.routingDomainId, mode: d.mode, virtualSubnetId: d.virtualSubnetId, customerAddress: d.customerAddress, externalAddress: d.externalAddress })),
      translations: this.nat.entries().map((e) => ({
        routingDomainId: e.routingDomainId, protocol: e.protocol, customer: `${formatIpv4(e.ca)}:${e.caPort}`,
        external: `${formatIpv4(e.external)}:${e.extPort}`, remote: `${formatIpv4(e.remote)}:${e.remotePort}`,
      })),
      ipv6: this.v6.status(),
      toDatacenter: this.out, fromDatacenter: this.in, drops: { ...this.drops },
    };
  }
}
