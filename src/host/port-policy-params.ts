// The port policy cmdlets' parameters and views, shared by a VM's adapters (vm-network.ts)
// and the management OS's (host-nic.ts): Set-VMNetworkAdapter's guards, mirroring and
// bandwidth, Add-/Remove-/Get-VMNetworkAdapterExtendedAcl and -Acl. Pure: Hyper-V's parameters
// in, the switch's PortPolicyPatch or rules out, and the output objects from a policy.
import type { ExtendedAcl, MeterCounters, PortAcl, PortPolicy, PortPolicyPatch } from '../switch/index.ts';

export interface SetAdapterParams {
  MacAddressSpoofing?: 'On' | 'Off'; DhcpGuard?: 'On' | 'Off'; RouterGuard?: 'On' | 'Off'; ArpGuard?: 'On' | 'Off';
  PortMirroring?: 'None' | 'Source' | 'Destination';
  MaximumBandwidth?: number; MinimumBandwidthAbsolute?: number; MinimumBandwidthWeight?: number;
  /** 0 clears it; else 4096–16777214. Stored on the adapter (vm-config.ts), not forwarded by yet. */
  VirtualSubnetId?: number;
}
export interface ExtendedAclParams {
  Direction: 'Inbound' | 'Outbound'; Action: 'Allow' | 'Deny'; Weight: number;
  LocalIPAddress?: string; RemoteIPAddress?: string; Protocol?: string; LocalPort?: string; RemotePort?: string;
  Stateful?: boolean; IdleSessionTimeout?: number;
}
export interface AclParams { Direction: 'Inbound' | 'Outbound' | 'Both'; Action: 'Allow' | 'Deny' | 'Meter'; RemoteIPAddress?: string; RemoteMacAddress?: string }

/** Set-VMNetworkAdapter's parameters as a patch; absent ones keep the port's value (mergePolicy). */
export function settingsPatch(p: SetAdapterParams): PortPolicyPatch {
  return {
    guards: { macAddressSpoofing: p.MacAddressSpoofing, dhcpGuard: p.DhcpGuard, routerGuard: p.RouterGuard, arpGuard: p.ArpGuard },
    bandwidth: { maximumBandwidth: p.MaximumBandwidth, minimumBandwidthAbsolute: p.MinimumBandwidthAbsolute, minimumBandwidthWeight: p.MinimumBandwidthWeight },
    mirroring: p.PortMirroring,
  };
}

/** The policy fields Get-VMNetworkAdapter shows, for VM and management-OS adapters alike. */
export function settingsView(p: PortPolicy): Record<string, unknown> {
  return {
    MacAddressSpoofing: p.guards.macAddressSpoofing, DhcpGuard: p.guards.dhcpGuard, RouterGuard: p.guards.routerGuard, ArpGuard: p.guards.arpGuard,
    PortMirroringMode: p.mirroring,
    BandwidthSetting: { MaximumBandwidth: p.bandwidth.maximumBandwidth, MinimumBandwidthAbsolute: p.bandwidth.minimumBandwidthAbsolute, MinimumBandwidthWeight: p.bandwidth.minimumBandwidthWeight },
  };
}

export function extendedAclRule(p: ExtendedAclParams): ExtendedAcl {
  return stripUndef({
    direction: p.Direction, action: p.Action, weight: p.Weight, localIPAddress: p.LocalIPAddress, remoteIPAddress: p.RemoteIPAddress,
    protocol: p.Protocol === undefined ? undefined : /^\d+$/.test(p.Protocol) ? Number(p.Protocol) : p.Protocol,
    localPort: p.LocalPort, remotePort: p.RemotePort, stateful: p.Stateful, idleSessionTimeout: p.IdleSessionTimeout,
  }) as ExtendedAcl;
}

/** Whether an extended ACL is the one Remove-VMNetworkAdapterExtendedAcl names (direction + weight). */
export function isExtendedAcl(direction: 'Inbound' | 'Outbound', weight: number): (x: ExtendedAcl) => boolean {
  return (x) => x.direction === direction && x.weight === weight;
}

/** Get-VMNetworkAdapterExtendedAcl's objects; `owner` carries VMName and ParentAdapter. */
export function extendedAclViews(p: PortPolicy, owner: Record<string, unknown>): Record<string, unknown>[] {
  return p.extendedAcls.map((x) => ({
    ...owner, Direction: x.direction, Action: x.action, Weight: x.weight,
    LocalIPAddress: x.localIPAddress ?? 'Any', RemoteIPAddress: x.remoteIPAddress ?? 'Any', Protocol: x.protocol ?? 'Any',
    LocalPort: x.localPort ?? 'Any', RemotePort: x.remotePort ?? 'Any', Stateful: x.stateful ?? false, IdleSessionTimeout: x.idleSessionTimeout ?? 0,
  }));
}

export function aclRule(p: AclParams): PortAcl {
  return stripUndef({ direction: p.Direction, action: p.Action, remoteIPAddress: p.RemoteIPAddress, remoteMacAddress: p.RemoteMacAddress }) as PortAcl;
}

/** Whether an ACL is the one Remove-VMNetworkAdapterAcl names (all four settings). */
export function isAcl(p: AclParams): (x: PortAcl) => boolean {
  return (x) => x.direction === p.Direction && x.action === p.Action && x.remoteIPAddress === p.RemoteIPAddress && x.remoteMacAddress === p.RemoteMacAddress;
}

/** Get-VMNetworkAdapterAcl's objects: Meter rules with their counters (zero when the port is not live). */
export function aclViews(p: PortPolicy, meters: readonly MeterCounters[], owner: Record<string, unknown>): Record<string, unknown>[] {
  return p.acls.map((x) => {
    const remote = x.remoteIPAddress ?? x.remoteMacAddress ?? '';
    const m = x.action === 'Meter' ? meters.find((c) => c.remoteAddress === remote) : undefined;
    return {
      ...owner, Direction: x.direction, Action: x.action,
      RemoteIPAddress: x.remoteIPAddress ?? null, RemoteMacAddress: x.remoteMacAddress ?? null,
      ...(x.action === 'Meter' ? { MeteredInboundBytes: m?.inboundBytes ?? 0, MeteredOutboundBytes: m?.outboundBytes ?? 0, MeteredInboundFrames: m?.inboundFrames ?? 0, MeteredOutboundFrames: m?.outboundFrames ?? 0 } : {}),
    };
  });
}

function stripUndef<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
