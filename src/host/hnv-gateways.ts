// The in-daemon multitenant gateway (src/hnv/gateway.ts) on the host's switches, as the
// vmhost-prefixed cmdlets change it (2012 R2 had a gateway VM and no NAT gateway cmdlets):
// New-/Get-/Remove-VmhostNetVirtualizationGateway, one routing domain each. Kept in
// <data-dir>/hnv-gateways.json next to the NetWNV policy, written atomically under one lock. The
// host runs one gateway for all of them (it has one port on the datacenter switch), so they all
// name the same External and Internal switches; it is made again on every change and at start,
// when its switches are created, re-bound or removed, and when the lookup record of a gateway CA
// changes; other policy changes reach it in place (all at once, from the store's and the
// switches' change listeners: nothing waits for the 5 s NAT sweep). Its tenant port's MAC is the one the gateway CA's lookup
// record names (the record the routers send the domain's default route to). A domain may have
// IPv6 too (-CustomerIPv6Address, -ExternalIPv6Address; in NAT mode the NPTv6 prefixes
// -InternalIPv6Prefix/-ExternalIPv6Prefix; -DatacenterIPv6Mtu): src/hnv/gateway6.ts.
import { join } from 'node:path';
import { VmhostError } from '../common/index.ts';
import {
  DEFAULT_DATACENTER_MTU, HnvGateway, NPT_MAX_PREFIX, checkVsid, normalizeAddress, normalizePrefix, normalizeRdid, type GatewayDomain, type GatewayIpv6, type GatewayMode, type HnvPolicy,
} from '../hnv/index.ts';
import { ipv6InPrefix, parseCidr } from '../packet/index.ts';
import { readJson, writeFileAtomic } from './atomic-file.ts';
import { invalid } from './invalid-argument.ts';
import type { SwitchSlot } from './switch-registry.ts';
import { SerialLock } from './vm-lock.ts';

export interface GatewayParams {
  RoutingDomainID: string; VirtualSubnetID: number; CustomerAddress: string; ExternalSwitchName: string; DatacenterSwitchName: string;
  ExternalAddress: string; Mode?: GatewayMode;
  CustomerIPv6Address?: string; ExternalIPv6Address?: string; InternalIPv6Prefix?: string; ExternalIPv6Prefix?: string; DatacenterIPv6Mtu?: number;
}

/** What is kept: the gateway's inputs except the MAC, read from the policy whenever the gateway is made. */
interface SavedDomain {
  readonly routingDomainId: string; readonly mode: GatewayMode; readonly virtualSubnetId: number; readonly customerAddress: string;
  readonly externalAddress: string; readonly externalSwitchName: string; readonly datacenterSwitchName: string;
  readonly ipv6?: GatewayIpv6;
}

export interface GatewayHost {
  policy(): HnvPolicy;
  switchNamed(name: string): SwitchSlot | undefined;
  event(level: 'Information' | 'Warning' | 'Error', code: string, message: string): void;
}

/** The gateway's own MAC on the datacenter switch (an Internal switch is local to the host: no other gateway shares it). */
const DATACENTER_MAC = '02:15:5d:fe:00:00';
const SWEEP_MS = 5_000;

interface GatewayStatus { translations: { routingDomainId: string }[]; drops: Record<string, number>; toDatacenter: number; fromDatacenter: number }

function switchOf(h: GatewayHost, name: string, type: 'External' | 'Internal', param: string): SwitchSlot {
  const s = h.switchNamed(name);
  if (!s) throw invalid(param, `no virtual switch named '${name}'`);
  if (s.sw.settings.type !== type) throw invalid(param, `switch '${name}' is ${s.sw.settings.type}, not ${type}`);
  return s;
}

/** The gateway CA's lookup record on this host gives the tenant port's MAC. */
function macOf(policy: HnvPolicy, d: SavedDomain): string {
  const r = policy.lookupRecords.find((x) => x.customerAddress === d.customerAddress && x.virtualSubnetId === d.virtualSubnetId);
  if (!r) throw invalid('CustomerAddress', `no lookup record for ${d.customerAddress} in virtual subnet ${d.virtualSubnetId} (New-NetVirtualizationLookupRecord with this host's provider address)`);
  if (!policy.providerAddresses.some((p) => p.providerAddress === r.providerAddress)) {
    throw invalid('CustomerAddress', `the lookup record of ${d.customerAddress} names provider address ${r.providerAddress}, not one of this host's`);
  }
  return r.macAddress;
}

/** The gateway's IPv6 CA needs a lookup record in the same subnet with the port's MAC (the one the IPv4 CA's record names): the routers send the domain's ::/0 route there. */
function checkIpv6Record(policy: HnvPolicy, d: SavedDomain, mac: string): void {
  if (!d.ipv6) return;
  const ca = d.ipv6.customerAddress;
  const r = policy.lookupRecords.find((x) => x.customerAddress === ca && x.virtualSubnetId === d.virtualSubnetId);
  if (!r) throw invalid('CustomerIPv6Address', `no lookup record for ${ca} in virtual subnet ${d.virtualSubnetId} (New-NetVirtualizationLookupRecord with the MAC of ${d.customerAddress}'s)`);
  if (r.macAddress !== mac) throw invalid('CustomerIPv6Address', `the lookup record of ${ca} names MAC ${r.macAddress}, not ${mac} (the gateway port's, from ${d.customerAddress}'s record)`);
}

/** The IPv6 inputs, checked and canonical (undefined: the domain has no IPv6 through the gateway). */
function ipv6Of(p: GatewayParams, mode: GatewayMode): GatewayIpv6 | undefined {
  const given = [p.CustomerIPv6Address, p.ExternalIPv6Address, p.InternalIPv6Prefix, p.ExternalIPv6Prefix, p.DatacenterIPv6Mtu].some((x) => x !== undefined);
  if (!given) return undefined;
  const address = (text: string | undefined, param: string): string => {
    if (text === undefined) throw invalid(param, 'required with the other IPv6 parameters');
    const a = normalizeAddress(text, param);
    if (!a.includes(':')) throw invalid(param, `${a} is not an IPv6 address`);
    if (a === '::' || a.startsWith('ff') || a.startsWith('fe80:')) throw invalid(param, `${a} is not a global or unique-local unicast address`);
    return a;
  };
  const customerAddress = address(p.CustomerIPv6Address, 'CustomerIPv6Address'), externalAddress = address(p.ExternalIPv6Address, 'ExternalIPv6Address');
  const mtu = p.DatacenterIPv6Mtu;
  if (mtu !== undefined && (!Number.isInteger(mtu) || mtu < 1280 || mtu > 9000)) throw invalid('DatacenterIPv6Mtu', `${mtu} is not an MTU in 1280–9000 (IPv6's minimum is 1280)`);
  if (mode === 'Forwarding') {
    if (p.InternalIPv6Prefix !== undefined || p.ExternalIPv6Prefix !== undefined) throw invalid(p.InternalIPv6Prefix !== undefined ? 'InternalIPv6Prefix' : 'ExternalIPv6Prefix', 'prefix translation is for Nat mode only: Forwarding routes the domain\'s own prefixes');
    return { customerAddress, externalAddress, ...(mtu === undefined ? {} : { mtu }) };
  }
  const prefix = (text: string | undefined, param: string): { text: string; length: number } => {
    if (text === undefined) throw invalid(param, 'required in Nat mode with IPv6 (NPTv6 maps the internal prefix onto the external one)');
    const n = normalizePrefix(text, param);
    if (n.cidr.version !== 6) throw invalid(param, `${n.text} is not an IPv6 prefix`);
    if (n.cidr.prefixLength < 1 || n.cidr.prefixLength > NPT_MAX_PREFIX) throw invalid(param, `/${n.cidr.prefixLength}: NPTv6 takes a prefix of /1 to /${NPT_MAX_PREFIX}`);
    return { text: n.text, length: n.cidr.prefixLength };
  };
  const internal = prefix(p.InternalIPv6Prefix, 'InternalIPv6Prefix'), external = prefix(p.ExternalIPv6Prefix, 'ExternalIPv6Prefix');
  if (internal.length !== external.length) throw invalid('ExternalIPv6Prefix', `${external.text} is not as long as ${internal.text} (NPTv6 maps prefixes of one length)`);
  return { customerAddress, externalAddress, internalPrefix: internal.text, externalPrefix: external.text, ...(mtu === undefined ? {} : { mtu }) };
}

/** The on-link IPv6 prefixes of a routing domain. */
const onLink6 = (policy: HnvPolicy, rdid: string) => policy.customerRoutes
  .filter((r) => r.routingDomainId === rdid && r.nextHop === '::' && r.destinationPrefix.includes(':'))
  .map((r) => r.destinationPrefix);

/** Two IPv6 prefixes (text) overlap: the shorter holds the longer's network. */
function overlap6(a: string, b: string): boolean {
  const ca = parseCidr(a), cb = parseCidr(b);
  return ipv6InPrefix(ca.address as Uint8Array, 0, cb.address as Uint8Array, Math.min(ca.prefixLength, cb.prefixLength));
}

/** The domain's IPv6 checked against the policy and the domains already served. */
function checkIpv6(policy: HnvPolicy, d: SavedDomain, others: readonly SavedDomain[]): void {
  const v = d.ipv6;
  if (!v) return;
  const mine = onLink6(policy, d.routingDomainId);
  if (mine.length === 0) throw invalid('CustomerIPv6Address', `routing domain ${d.routingDomainId} has no on-link IPv6 customer route (New-NetVirtualizationCustomerRoute -NextHop ::)`);
  if (v.internalPrefix !== undefined) {
    const outside = mine.filter((x) => !overlap6(x, v.internalPrefix!) || parseCidr(x).prefixLength < parseCidr(v.internalPrefix!).prefixLength);
    if (outside.length > 0) throw invalid('InternalIPv6Prefix', `${v.internalPrefix} does not hold the domain's ${outside.join(', ')}: those VMs could not get out`);
    for (const o of others) {
      if (o.ipv6?.externalPrefix !== undefined && overlap6(o.ipv6.externalPrefix, v.externalPrefix!)) {
        throw invalid('ExternalIPv6Prefix', `${v.externalPrefix} overlaps ${o.ipv6.externalPrefix} of ${o.routingDomainId} (a reply must name one domain)`);
      }
    }
  } else {
    for (const o of others.filter((x) => x.mode === 'Forwarding' && x.ipv6)) {
      const clash = mine.find((a) => onLink6(policy, o.routingDomainId).some((b) => overlap6(a, b)));
      if (clash) throw invalid('RoutingDomainID', `its IPv6 prefix ${clash} overlaps one of ${o.routingDomainId}, also forwarded (the datacenter routes them by address)`);
    }
  }
}

/** macOf, or undefined where it would refuse. */
function macIfAny(policy: HnvPolicy, d: SavedDomain): string | undefined {
  try { return macOf(policy, d); } catch { return undefined; }
}

/** The on-link IPv4 prefixes of a routing domain (what a forwarding-mode gateway routes into it). */
const onLink = (policy: HnvPolicy, rdid: string) => policy.customerRoutes
  .filter((r) => r.routingDomainId === rdid && r.nextHop === '0.0.0.0' && !r.destinationPrefix.includes(':'))
  .map((r) => normalizePrefix(r.destinationPrefix).cidr as { address: number; prefixLength: number });

function overlap(a: { address: number; prefixLength: number }, b: { address: number; prefixLength: number }): boolean {
  const len = Math.min(a.prefixLength, b.prefixLength);
  const mask = len === 0 ? 0 : (~0 << (32 - len)) >>> 0;
  return ((a.address & mask) >>> 0) === ((b.address & mask) >>> 0);
}

export class HnvGateways {
  private saved: SavedDomain[] = [];
  private gw: HnvGateway | undefined;
  private failed: string | undefined;
  /** The tenant-port MAC of each served domain in the gateway made last (a record change that moves it remakes the gateway). */
  private madeMacs = new Map<string, string>();
  private readonly lock = new SerialLock();
  private readonly path: string;
  private timer: NodeJS.Timeout | undefined;

  constructor(dataDir: string, private readonly h: GatewayHost) {
    this.path = join(dataDir, 'hnv-gateways.json');
  }

  /** Daemon start (after the switches and the policy): the saved gateway is made again; what fails is said in an event and in Get-. */
  async load(): Promise<void> {
    this.saved = await readJson<SavedDomain[]>(this.path).catch((e: NodeJS.ErrnoException) => { if (e.code === 'ENOENT') return []; throw e; });
    await this.lock.run(() => this.rebuild());
    this.timer = setInterval(() => this.gw?.sweep(), SWEEP_MS);
    this.timer.unref(); // the sweep never keeps the daemon alive
  }

  /**
   * The policy changed (the store's listener, at once): the forwarding-mode domains' routes
   * follow in place; a gateway CA's lookup record changed (another MAC, gone, another host's
   * PA) or a gateway that could not be made is made again, so its tenant port always has the
   * MAC the routers send to. Resolves when the gateway is as the policy says.
   */
  policyChanged(p: HnvPolicy): Promise<void> {
    if (this.gw && this.saved.every((d) => this.madeMacs.get(d.routingDomainId) === macIfAny(p, d))) {
      this.gw.setPolicy(p);
      return Promise.resolve();
    }
    return this.gw || this.failed ? this.lock.run(() => this.rebuild()) : Promise.resolve();
  }

  /** A switch was created, re-bound or removed: a gateway on a switch of that name is made again (a removed switch took its ports, a new one has none). */
  switchChanged(name: string): Promise<void> {
    const first = this.saved[0];
    if (!first || ![first.externalSwitchName, first.datacenterSwitchName].some((n) => n.toLowerCase() === name.toLowerCase())) return Promise.resolve();
    return this.lock.run(() => this.rebuild());
  }

  /** Every input checked against the host as it is now; the gateway with it made before it is saved. */
  async add(p: GatewayParams): Promise<Record<string, unknown>> {
    return this.lock.run(async () => {
      const policy = this.h.policy();
      const mode = p.Mode ?? 'Nat', ipv6 = ipv6Of(p, mode);
      const d: SavedDomain = {
        routingDomainId: normalizeRdid(p.RoutingDomainID), mode, virtualSubnetId: checkVsid(p.VirtualSubnetID),
        customerAddress: normalizeAddress(p.CustomerAddress, 'CustomerAddress'), externalAddress: normalizeAddress(p.ExternalAddress, 'ExternalAddress'),
        externalSwitchName: switchOf(this.h, p.ExternalSwitchName, 'External', 'ExternalSwitchName').sw.settings.name,
        datacenterSwitchName: switchOf(this.h, p.DatacenterSwitchName, 'Internal', 'DatacenterSwitchName').sw.settings.name,
        ...(ipv6 ? { ipv6 } : {}),
      };
      if (d.customerAddress.includes(':') || d.externalAddress.includes(':')) {
        throw invalid(d.externalAddress.includes(':') ? 'ExternalAddress' : 'CustomerAddress', 'an IPv4 address (IPv6 goes in -CustomerIPv6Address and -ExternalIPv6Address)');
      }
      if (!policy.customerRoutes.some((r) => r.routingDomainId === d.routingDomainId && r.virtualSubnetId === d.virtualSubnetId)) {
        throw invalid('RoutingDomainID', `routing domain ${d.routingDomainId} has no customer route in virtual subnet ${d.virtualSubnetId}`);
      }
      checkIpv6Record(policy, d, macOf(policy, d));
      checkIpv6(policy, d, this.saved);
      const first = this.saved[0];
      if (first && (first.externalSwitchName !== d.externalSwitchName || first.datacenterSwitchName !== d.datacenterSwitchName)) {
        throw invalid('DatacenterSwitchName', `the host's gateway is on switches '${first.externalSwitchName}' and '${first.datacenterSwitchName}'`);
      }
      if (this.saved.some((x) => x.routingDomainId === d.routingDomainId)) throw invalid('RoutingDomainID', `the gateway already serves ${d.routingDomainId}`);
      if (d.mode === 'Forwarding') {
        const mine = onLink(policy, d.routingDomainId);
        for (const o of this.saved.filter((x) => x.mode === 'Forwarding')) {
          if (mine.some((a) => onLink(policy, o.routingDomainId).some((b) => overlap(a, b)))) {
            throw invalid('RoutingDomainID', `its customer prefixes overlap those of ${o.routingDomainId}, also in forwarding mode (the datacenter routes them by address)`);
          }
        }
      }
      const before = this.saved;
      this.saved = [...before, d];
      await this.rebuild();
      if (this.failed) { const why = this.failed; this.saved = before; await this.rebuild(); throw new VmhostError('HNV_BAD_POLICY', why, { op: 'hnv-gateway' }); }
      await writeFileAtomic(this.path, JSON.stringify(this.saved, null, 2) + '\n');
      return this.list({ RoutingDomainID: d.routingDomainId })[0]!;
    });
  }

  async remove(f: { RoutingDomainID?: string }): Promise<number> {
    return this.lock.run(async () => {
      const match = this.matcher(f);
      const keep = this.saved.filter((d) => !match(d));
      const n = this.saved.length - keep.length;
      if (n === 0) throw new VmhostError('NOT_FOUND', 'No network virtualization gateway matches the given parameters', { op: 'hnv-gateway' });
      await writeFileAtomic(this.path, JSON.stringify(keep, null, 2) + '\n');
      this.saved = keep;
      await this.rebuild();
      return n;
    });
  }

  list(f: { RoutingDomainID?: string } = {}): Record<string, unknown>[] {
    const s = this.gw?.status() as GatewayStatus | undefined;
    return this.saved.filter(this.matcher(f)).map((d) => ({
      RoutingDomainID: d.routingDomainId, VirtualSubnetID: d.virtualSubnetId, CustomerAddress: d.customerAddress, Mode: d.mode, ExternalAddress: d.externalAddress,
      ExternalSwitchName: d.externalSwitchName, DatacenterSwitchName: d.datacenterSwitchName,
      CustomerIPv6Address: d.ipv6?.customerAddress ?? null, ExternalIPv6Address: d.ipv6?.externalAddress ?? null,
      InternalIPv6Prefix: d.ipv6?.internalPrefix ?? null, ExternalIPv6Prefix: d.ipv6?.externalPrefix ?? null, DatacenterIPv6Mtu: d.ipv6 ? d.ipv6.mtu ?? DEFAULT_DATACENTER_MTU : null,
      Status: s ? 'Ok' : `Off: ${this.failed ?? 'not made'}`,
      Translations: s?.translations.filter((t) => t.routingDomainId === d.routingDomainId).length ?? 0,
      // The counters are the gateway's (all its domains): a refusal is not always one domain's.
      ToDatacenter: s?.toDatacenter ?? 0, FromDatacenter: s?.fromDatacenter ?? 0, Drops: s?.drops ?? {},
    }));
  }

  private matcher(f: { RoutingDomainID?: string }): (d: SavedDomain) => boolean {
    const rdid = f.RoutingDomainID === undefined ? undefined : normalizeRdid(f.RoutingDomainID);
    return (d) => rdid === undefined || d.routingDomainId === rdid;
  }

  /** The old gateway's ports go, the new one's come (its translations start over: a change is rare). */
  private async rebuild(): Promise<void> {
    // A switch removed under the gateway took its ports with it: nothing is left to take off.
    await this.gw?.close().catch((e: Error) => this.h.event('Warning', 'HNV_GATEWAY_OFF', `The gateway's old ports: ${e.message}`));
    this.gw = undefined;
    this.failed = undefined;
    const first = this.saved[0];
    if (!first) return;
    try {
      const policy = this.h.policy();
      const domains: GatewayDomain[] = this.saved.map((d) => {
        const macAddress = macOf(policy, d);
        checkIpv6Record(policy, d, macAddress);
        return {
          routingDomainId: d.routingDomainId, mode: d.mode, virtualSubnetId: d.virtualSubnetId, customerAddress: d.customerAddress,
          macAddress, externalAddress: d.externalAddress, ...(d.ipv6 ? { ipv6: d.ipv6 } : {}),
        };
      });
      this.gw = await HnvGateway.create({
        tenantSwitch: switchOf(this.h, first.externalSwitchName, 'External', 'ExternalSwitchName').sw,
        datacenterSwitch: switchOf(this.h, first.datacenterSwitchName, 'Internal', 'DatacenterSwitchName').sw,
        datacenterMac: DATACENTER_MAC, domains, policy,
      });
      this.madeMacs = new Map(domains.map((d) => [d.routingDomainId, d.macAddress]));
    } catch (e) {
      this.failed = (e as Error).message;
      this.h.event('Warning', 'HNV_GATEWAY_OFF', `The network virtualization gateway is off: ${this.failed}`);
    }
  }

  /** Graceful stop: the ports go with the switches; only the timer is ours to stop. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
