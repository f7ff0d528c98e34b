// Switch-wide settings (New-/Set-VMSwitch) and the persisted form of a whole switch, from
// which the daemon recreates it after a restart (ports at the same socket paths). Depends on
// policy, team-uplink.
import { VmhostError } from '../common/errors.ts';
import type { PortPolicy } from './policy.ts';
import type { UplinkSpec } from './team-uplink.ts';

export type SwitchType = 'Private' | 'Internal' | 'External';

export interface SwitchSettings {
  readonly name: string;
  readonly type: SwitchType;
  /** Directory for port sockets when addPort gives no socketPath. */
  readonly socketDir?: string;
  /** MAC (and learned IP ownership) ageing, seconds. Default 300. */
  readonly macAgeingSeconds: number;
  /** Frames longer than this (bytes, without the stream's length prefix) are dropped as 'giant-frame'. Default 9018. */
  readonly maxFrameBytes: number;
  /**
   * Learned IP addresses (ARP/ND guard ownership, ip-owners.ts) one port may hold; beyond it a
   * new address is not learned, and a port with ArpGuard On may not use it ('address-quota').
   * Default 1024.
   */
  readonly maxLearnedAddressesPerPort: number;
  /** Learned IP addresses the whole switch may hold, same rule. Default 65536. */
  readonly maxLearnedAddresses: number;
  readonly minimumBandwidthMode: 'Absolute' | 'Weight';
  /** Weight of ports without MinimumBandwidthWeight (Hyper-V's DefaultFlowMinimumBandwidthWeight). Default 1. */
  readonly defaultFlowMinimumBandwidthWeight: number;
  /** Floor of ports without MinimumBandwidthAbsolute, bits/s. Default 1,000,000. */
  readonly defaultFlowMinimumBandwidthAbsolute: number;
  /**
   * External switches: the UDP tunnel to the peer switch. An External switch without one is
   * degraded (its host adapter is gone): it forwards among its own ports until re-bound.
   * A NIC team (TeamSettings) is a set of such tunnels.
   */
  readonly uplink?: UplinkSpec;
}

export type SwitchSettingsInput = Pick<SwitchSettings, 'name' | 'type'> & Partial<Omit<SwitchSettings, 'name' | 'type'>>;

export function completeSettings(s: SwitchSettingsInput): SwitchSettings {
  const out: SwitchSettings = {
    macAgeingSeconds: 300, maxFrameBytes: 9018, maxLearnedAddressesPerPort: 1024, maxLearnedAddresses: 65536, minimumBandwidthMode: 'Weight',
    defaultFlowMinimumBandwidthWeight: 1, defaultFlowMinimumBandwidthAbsolute: 1_000_000,
    ...Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)),
  } as SwitchSettings;
  const bad = (m: string): VmhostError => new VmhostError('SWITCH_BAD_SETTINGS', m, { op: 'switch-settings', switch: s.name });
  if (!out.name) throw bad('a switch needs a name');
  if (!['Private', 'Internal', 'External'].includes(out.type)) throw bad(`SwitchType must be Private, Internal or External`);
  if (out.type !== 'External' && out.uplink) throw bad('only an External switch has an uplink');
  if (!(out.macAgeingSeconds > 0)) throw bad('macAgeingSeconds must be > 0');
  if (!(out.maxFrameBytes >= 64 && out.maxFrameBytes <= 65535 + 18)) throw bad('maxFrameBytes must be 64–65553');
  if (!isCount(out.maxLearnedAddresses)) throw bad(`maxLearnedAddresses must be an integer 1–${MAX_COUNT}`);
  if (!isCount(out.maxLearnedAddressesPerPort) || out.maxLearnedAddressesPerPort > out.maxLearnedAddresses) {
    throw bad('maxLearnedAddressesPerPort must be an integer from 1 to maxLearnedAddresses');
  }
  if (out.minimumBandwidthMode !== 'Absolute' && out.minimumBandwidthMode !== 'Weight') throw bad('MinimumBandwidthMode must be Absolute or Weight');
  return out;
}

/** Bound on the address quotas themselves: the table is memory. */
const MAX_COUNT = 1 << 24;

function isCount(n: number): boolean { return Number.isInteger(n) && n >= 1 && n <= MAX_COUNT; }

export interface PortConfig {
  readonly id: string;
  readonly socketPath: string;
  readonly policy: PortPolicy;
}

export interface ExtensionConfig {
  readonly name: string;
  readonly enabled: boolean;
  readonly config: Record<string, unknown>;
}

/** Everything needed to recreate a switch: JSON-serialisable. */
export interface SwitchConfig {
  readonly settings: SwitchSettings;
  readonly ports: readonly PortConfig[];
  /** In pipeline order. */
  readonly extensions: readonly ExtensionConfig[];
}
