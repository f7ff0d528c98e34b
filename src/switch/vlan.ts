// VLAN membership (Set-VMNetworkAdapterVlan semantics). Inside the switch a frame is untagged
// and carries a VLAN number (0 = untagged network). A port's VlanSetting is compiled into a
// PortVlan that answers three questions:
//   ingress(tag)   which internal VLAN a frame arriving from the port belongs to (or refused);
//   accepts(src,v) may a frame of VLAN v from source port src be delivered to this port;
//   egressTag(v)   is the frame tagged (with v) or untagged on the way out.
// Modes: Untagged (VLAN 0 only); Access N (untagged on the wire, VLAN N inside); Trunk
// (tagged frames of AllowedVlanIdList, untagged = NativeVlanId, native sent untagged);
// uplink = trunk of every VLAN with 0 untagged.
// Private VLANs (the seed's Table 3): a PVLAN domain is a primary VLAN P with secondary VLANs.
// Frames from an isolated or community port carry its secondary S; from a promiscuous port,
// P. Isolated ports talk only to promiscuous ports; community ports to the same community
// and promiscuous ports; promiscuous ports to every port of the domain whose secondary is in
// their SecondaryVlanIdList (and to other promiscuous ports of P). On a trunk or uplink the
// domain is carried as tags P and S (how physical switches carry PVLANs), so a frame tagged
// P from a trunk acts as promiscuous, one tagged S as coming from that secondary.
// MAC learning is per primary VLAN for PVLAN traffic, and per virtual subnet for a port in one
// (learningDomain).
// Depends on policy.
import type { VlanSetting } from './policy.ts';

export type VlanKind = 'untagged' | 'access' | 'trunk' | 'uplink' | 'isolated' | 'community' | 'promiscuous';

export class PortVlan {
  readonly kind: VlanKind;
  /** Access VLAN, trunk native VLAN, or the PVLAN VLAN this port's frames carry (S, or P for promiscuous). */
  readonly own: number;
  readonly primary: number;
  /** Trunk: allowed VLANs. Promiscuous: its secondary VLANs. */
  readonly set: ReadonlySet<number>;

  constructor(s: VlanSetting | 'uplink') {
    if (s === 'uplink') { this.kind = 'uplink'; this.own = 0; this.primary = 0; this.set = new Set(); return; }
    switch (s.mode) {
      case 'Untagged': this.kind = 'untagged'; this.own = 0; this.primary = 0; this.set = new Set(); break;
      case 'Access': this.kind = 'access'; this.own = s.vlanId; this.primary = 0; this.set = new Set(); break;
      case 'Trunk': this.kind = 'trunk'; this.own = s.nativeVlanId; this.primary = 0; this.set = new Set(s.allowedVlanIdList); break;
      case 'Isolated': this.kind = 'isolated'; this.own = s.secondaryVlanId; this.primary = s.primaryVlanId; this.set = new Set(); break;
      case 'Community': this.kind = 'community'; this.own = s.secondaryVlanId; this.primary = s.primaryVlanId; this.set = new Set(); break;
      case 'Promiscuous': this.kind = 'promiscuous'; this.own = s.primaryVlanId; this.primary = s.primaryVlanId; this.set = new Set(s.secondaryVlanIdList); break;
    }
  }

  get isPvlan(): boolean { return this.kind === 'isolated' || this.kind === 'community' || this.kind === 'promiscuous'; }
  get isTrunkLike(): boolean { return this.kind === 'trunk' || this.kind === 'uplink'; }

  /** Internal VLAN of a frame arriving with tag `vid` (-1 = untagged, 0 = priority tag), or -1 = refused. */
  ingress(vid: number): number {
    if (vid <= 0) return this.own;
    if (this.kind === 'uplink') return vid;
    if (this.kind === 'trunk' && (this.set.has(vid) || vid === this.own)) return vid;
    return -1;
  }

  /** May a frame of internal VLAN `v`, received on port `src`, leave through this port? */
  accepts(src: PortVlan, v: number): boolean {
    switch (this.kind) {
      case 'uplink': return true;
      case 'untagged': case 'access': return v === this.own && !(src.kind === 'isolated' || src.kind === 'community');
      case 'trunk': return v === this.own || this.set.has(v);
      case 'isolated':
        if (src.kind === 'promiscuous') return src.primary === this.primary && src.set.has(this.own);
        return src.isTrunkLike && v === this.primary;
      case 'community':
        if (src.kind === 'promiscuous') return src.primary === this.primary && src.set.has(this.own);
        if (src.kind === 'community') return src.primary === this.primary && src.own === this.own;
        return src.isTrunkLike && (v === this.primary || v === this.own);
      case 'promiscuous':
        if (src.kind === 'isolated' || src.kind === 'community') return src.primary === this.primary && this.set.has(src.own);
        if (src.kind === 'promiscuous') return src.primary === this.primary;
        return src.isTrunkLike && (v === this.primary || this.set.has(v));
    }
  }

  /** The tag to put on a frame of VLAN `v` leaving this port, or -1 for untagged. */
  egressTag(v: number): number {
    if (this.isTrunkLike) return v === this.own ? -1 : v;
    return -1;
  }
}

/**
 * Maps a frame's VLAN, or its port's virtual subnet, to its MAC learning domain: a frame of a
 * virtual subnet learns in that VSID (≥ 4096, so never equal to a VLAN number: two tenants'
 * equal MACs stay apart), a PVLAN secondary in its primary. `secondaryToPrimary` is rebuilt
 * by the switch from its ports' settings.
 */
export function learningDomain(v: number, secondaryToPrimary: ReadonlyMap<number, number>, vsid = 0): number {
  return vsid > 0 ? vsid : secondaryToPrimary.get(v) ?? v;
}
