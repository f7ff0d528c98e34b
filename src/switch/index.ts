// The extensible virtual switch (layer 2: imports common and packet only). The daemon creates
// VirtualSwitch objects, adds a port per VM NIC (QEMU connects to the port's unix socket with
// `-netdev stream`), changes port policy at runtime, and persists toConfig() to recreate
// the switch after a restart with fromConfig(). See README.md for the pipeline and rules.
import { registerExtension, findExtension } from './extension.ts';
import { flowSamplerExtension } from './ext-flow-sampler.ts';
import { learnedOnlyForwardingExtension } from './ext-learned-only.ts';

export {
  VirtualSwitch, UPLINK_PORT_ID,
  type SwitchEvent, type SwitchOptions, type AddPortSpec, type PortInfo, type ExtensionInfo,
} from './switch.ts';
export {
  type SwitchType, type SwitchSettings, type SwitchSettingsInput, type SwitchConfig, type PortConfig, type ExtensionConfig,
} from './settings.ts';
export {
  type PortPolicy, type PortPolicyPatch, type VlanSetting, type GuardSettings, type OnOff, type ExtendedAcl, type PortAcl,
  type AclDirection, type BandwidthSettings, type PortMirroring, defaultPolicy, mergePolicy, validatePolicy,
} from './policy.ts';
export type { UplinkSettings } from './uplink.ts';
export type { TeamMemberStatus, TeamMemberLacp, TeamSettings, TeamingMode, UplinkSpec } from './team-uplink.ts';
export { LOAD_BALANCING_ALGORITHMS, FLOWLET_GAP_MS, type LoadBalancingAlgorithm } from './team-distribution.ts';
export type { LacpTimer } from './lacp.ts';
export type { MeterCounters } from './acl.ts';
export type { PortCounters, SwitchStats, SwitchDropReason } from './stats.ts';
export type { SavedPortCounters } from './saved-counters.ts';
export { DEFAULT_CAPTURE_MAX_BYTES, type CaptureStop, type CaptureStopReason, type CaptureResult } from './capture.ts';
export {
  registerExtension, registeredExtensions, findExtension,
  type ExtensionDefinition, type ExtensionType, type SwitchExtension, type ExtensionFrame, type ExtensionHost, type ExtensionTimer, type PortChange,
  type Delivery, type ForwardDecision, type ExtensionFlow, FLOW_STALE, FLOW_KEY_WORDS, KEY_BY_SWITCH, KEY_BY_EXTENSION, KEY_NONE,
} from './extension.ts';
export type { FlowSample } from './ext-flow-sampler.ts';
export { FrameDecoder, encodeFrame, STREAM_MAX_RECORD } from './framing.ts';
export { ExactMatchTable } from './exact-match.ts';

// The built-in extensions, registered once per process.
for (const def of [flowSamplerExtension, learnedOnlyForwardingExtension]) if (!findExtension(def.name)) registerExtension(def);
