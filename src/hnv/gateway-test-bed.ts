// Test support for the gateway's tests (IPv4 in gateway.test.ts, IPv6 in gateway6.test.ts): two
// hosts' External switches joined over UDP with the tenants' VM ports, the datacenter switch with
// the host's vNIC, HNV on both tenant switches and the gateway on host A. The host's vNIC records
// what reaches it; `answer` lets a test's host resolve its address (ARP or NS) and say whether
// the frame is also recorded.
import { VirtualSwitch } from '../switch/index.ts';
import { parseFrame, type FrameInfo } from '../packet/index.ts';
import { udpJoinedSwitches } from '../switch/test-support.ts';
import { HNV_EXTENSION, HnvGateway, type GatewayDomain, type HnvExtensionConfig } from './index.ts';
import type { HnvPolicy } from './policy.ts';

export interface BedVm { port: string; host: 'a' | 'b'; vsid: number; mac: string }

export interface GatewayBedOptions {
  vms: readonly BedVm[];
  hostMac: string;
  datacenterMac: string;
  /** Host A's and host B's HNV policy; A's is the gateway's too. */
  policies: readonly [HnvPolicy, HnvPolicy];
  domains: readonly GatewayDomain[];
  now: () => number;
  /** Called for each frame reaching the host's vNIC: may inject an answer; false keeps the frame out of `got`. */
  answer: (dc: VirtualSwitch, frame: Uint8Array, info: FrameInfo) => boolean;
}

export interface GatewayBed {
  ext: VirtualSwitch; extB: VirtualSwitch; dc: VirtualSwitch; gw: HnvGateway;
  /** Frames each port (and 'host') received since the last `clear`. */
  got: Map<string, Uint8Array[]>;
  clear(): void;
  /** The ports that received something since the last `clear`, sorted. */
  receivers(): string[];
  drops(): Record<string, number>;
  close(): Promise<void>;
}

export async function gatewayBed(o: GatewayBedOptions): Promise<GatewayBed> {
  const got = new Map<string, Uint8Array[]>();
  const [ext, extB] = await udpJoinedSwitches();
  const dc = await VirtualSwitch.create({ name: 'datacenter', type: 'Internal' });
  for (const v of o.vms) {
    got.set(v.port, []);
    await (v.host === 'a' ? ext : extB).addPort({ id: v.port, policy: { mac: v.mac, virtualSubnetId: v.vsid }, sink: (f) => got.get(v.port)!.push(Uint8Array.prototype.slice.call(f)) });
  }
  got.set('host', []);
  await dc.addPort({
    id: 'host', policy: { mac: o.hostMac }, sink: (f) => {
      if (o.answer(dc, f, parseFrame(f))) got.get('host')!.push(Uint8Array.prototype.slice.call(f));
    },
  });
  for (const [sw, policy] of [[ext, o.policies[0]], [extB, o.policies[1]]] as const) {
    sw.addExtension(HNV_EXTENSION, { config: ({ policy } satisfies HnvExtensionConfig) as unknown as Record<string, unknown> });
  }
  const gw = await HnvGateway.create({ tenantSwitch: ext, datacenterSwitch: dc, datacenterMac: o.datacenterMac, policy: o.policies[0], now: o.now, domains: [...o.domains] });
  return {
    ext, extB, dc, gw, got,
    clear: () => { for (const k of got.keys()) got.set(k, []); },
    receivers: () => [...got].filter(([, f]) => f.length > 0).map(([k]) => k).sort(),
    drops: () => (gw.status() as { drops: Record<string, number> }).drops,
    close: async () => { await Promise.all([ext.close(), extB.close(), dc.close()]); },
  };
}
