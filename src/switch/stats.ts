// Counters: per port rx/tx frames and bytes and drops by reason; the switch sums them.
// "rx" is what the switch received from the port (the VM sent), "tx" what it delivered to it.
// Drop reasons are strings: the packet library's malformed-frame reasons plus the switch's own
// (SwitchDropReason). Depends on packet (types only).
import type { DropReason } from '../packet/index.ts';

export type SwitchDropReason =
  | DropReason
  | 'stream-corrupt' | 'port-not-connected' | 'tx-queue-full'
  | 'vlan-not-allowed' | 'pvlan-isolation'
  | 'mac-spoofing' | 'dhcp-guard' | 'router-guard' | 'arp-spoofing' | 'nd-spoofing' | 'address-quota'
  | 'acl-deny' | 'acl-deny-inbound'
  | 'rate-limit' | 'congestion'
  | 'unknown-destination' | 'extension'
  | 'uplink-error';

export interface PortCounters {
  rxFrames: number;
  rxBytes: number;
  txFrames: number;
  txBytes: number;
  /** Frames dropped, by reason: on ingress from this port, or on the way to it. */
  drops: Record<string, number>;
}

export function newCounters(): PortCounters {
  return { rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, drops: {} };
}

export function countDrop(c: PortCounters, reason: string): void {
  c.drops[reason] = (c.drops[reason] ?? 0) + 1;
}

export function snapshotCounters(c: PortCounters): PortCounters {
  return { ...c, drops: { ...c.drops } };
}

export interface SwitchStats extends PortCounters {
  /** Learned MAC entries (all VLANs). */
  macEntries: number;
  ports: Record<string, PortCounters>;
}
