// Switch extensions (the Hyper-V extensible switch's capture, filter and forwarding
// extensions): modules registered by name in a process-wide registry, then added to a switch
// in an order, each enabled or disabled per switch with its own config.
// - capture: sees every frame on ingress (after port policy) and on egress; cannot drop.
// - filter: like capture, and may drop (return false) — counted as 'extension' drops — or
//   hand a port a rewritten frame instead (egress returns the new bytes).
// - forwarding: at most one enabled per switch; replaces default forwarding: given the frame
//   and the ports it may legally reach (VLAN/PVLAN/virtual subnet already applied), returns
//   the ports to deliver to, 'default' (forward as the switch would), or deliveries: frames of
//   its own making (encapsulated toward the uplink, decapsulated toward a VM, an ARP answer
//   back to the ingress port) to ports of its choice, with a drop reason counted on the
//   ingress port when it refuses the frame. Network virtualization (src/hnv) is such an
//   extension: it needs to send what it built, not only choose among candidates.
// Any extension may veto a port or policy change (checkPortChange returns a reason) and is
// told about the change when it happens (portChanged). An extension that must send on its own
// (the HNV router's unsolicited Router Advertisements) offers a timer the switch owns: armed
// when the extension is added, never left behind by its removal or the switch's close.
// Depends on packet (types), policy.
import type { FrameInfo } from '../packet/index.ts';
import type { PortPolicy } from './policy.ts';
import { VmhostError } from '../common/errors.ts';

export type ExtensionType = 'capture' | 'filter' | 'forwarding';

/** What an extension sees of a frame. Valid only during the call (the switch reuses the object for the next frame); `frame` is untagged. */
export interface ExtensionFrame {
  readonly frame: Uint8Array;
  readonly info: FrameInfo;
  /** The switch-internal VLAN (0 = untagged network). */
  readonly vlan: number;
  /** MAC learning domain: the source port's virtual subnet (VSID ≥ 4096), else the VLAN (the primary VLAN for PVLAN traffic). */
  readonly domain: number;
  /** The source port's virtual subnet (Set-VMNetworkAdapter -VirtualSubnetId); 0 = none. */
  readonly vsid: number;
  readonly sourcePort: string;
}

/** A frame a forwarding extension hands to one port: the frame it was given, or bytes it built (which leave untagged). */
export interface Delivery { readonly port: string; readonly frame: Uint8Array }

/**
 * A forwarding extension's decision for one delivery, offered for the switch's microflow cache
 * (flow-cache.ts): the next frames of the flow — same ingress port and MACs (and IPv4 fields
 * while some port has ACLs) — skip the pipeline and the extension's forward() and are turned
 * into the delivery by these two calls. Offer one only for a decision that depends on nothing
 * else of the frame (its bytes are the build's business) nor on what the MAC table learns:
 * the switch drops the entry on its own changes (ports, policies, extensions), the extension
 * answers for its own (its config, its tables) through `length`.
 */
export interface ExtensionFlow {
  /**
   * Before anything is done to a frame of `length` bytes: -1, it leaves as it is; > 0, the
   * bytes `build` makes of it; FLOW_STALE: not by this flow (it went stale, or this frame is
   * one the extension refuses or decides otherwise): the full pipeline takes the frame.
   */
  length(length: number): number;
  /**
   * Asked once per frame the flow delivers (length() > 0, the source's checks passed): where in
   * the frame the delivery lies when it is the length() bytes of the frame from there (a
   * tunnel's inner frame) — the switch then hands the destination that part (PortIo.send's
   * start and length) and calls build() only for a port whose fair queue keeps frames; -1:
   * build() makes the delivery.
   */
  offset(): number;
  /** The frame as delivered, written into `out` (length() bytes: a slot lent by the destination) when given. */
  build(frame: Uint8Array, info: FrameInfo, out: Uint8Array | null): Uint8Array;
}

/** ExtensionFlow.length: the flow does not decide this frame. */
export const FLOW_STALE = -2;

/** How many key words SwitchExtension.flowKey fills. */
export const FLOW_KEY_WORDS = 6;

/** SwitchExtension.flowKey's answers. */
export const KEY_BY_SWITCH = 0;
export const KEY_BY_EXTENSION = 1;
export const KEY_NONE = -1;

/**
 * What a forwarding extension decides for a frame: candidate port ids (the frame unchanged),
 * 'default' (the switch's own MAC-table forwarding), or deliveries — any port, the uplink and
 * the ingress port included, so the extension answers for isolation — with `drop`, when set,
 * counted on the ingress port under that reason, and for one delivery without a drop perhaps
 * the `flow` the switch may cache it as. The switch is done with a decision before it calls
 * forward again, so an extension may hand back the same (mutable) object every frame rather
 * than make one per frame.
 */
export type ForwardDecision = readonly string[] | 'default' | { readonly deliver: readonly Delivery[]; readonly drop?: string; readonly flow?: ExtensionFlow };

export type PortChange =
  | { readonly op: 'add'; readonly portId: string; readonly policy: PortPolicy }
  | { readonly op: 'set'; readonly portId: string; readonly policy: PortPolicy; readonly previous: PortPolicy }
  | { readonly op: 'remove'; readonly portId: string };

/** What the switch offers its extensions. */
export interface ExtensionHost {
  readonly switchName: string;
  /** The default MAC table's answer (undefined = not learned). */
  lookupMac(domain: number, mac: number): string | undefined;
  portIds(): string[];
  portPolicy(id: string): PortPolicy | undefined;
  now(): number;
  /**
   * A slot of port `id`'s next send batch (the uplink's, PortIo.lend) to build a frame of
   * `length` bytes in, delivered to that port by this decision: it then leaves without another
   * copy. Null when the port has none to lend (node:dgram, a NIC team, a fair queue toward
   * it): build the frame elsewhere.
   */
  lend(id: string, length: number): Uint8Array | null;
}

/**
 * An extension's own periodic sending, run by the switch (extensions have no timers of their
 * own, so none outlives its extension): the first fire `nextDelayMs()` after the extension is
 * added, then again each `nextDelayMs()` (asked anew: it may be randomised), while the
 * extension is on the switch; what `fire()` returns is sent to those ports (untagged) while it
 * is enabled.
 */
export interface ExtensionTimer {
  nextDelayMs(): number;
  fire(): readonly Delivery[];
}

export interface SwitchExtension {
  timer?: ExtensionTimer;
  ingress?(f: ExtensionFrame): boolean | void;
  /** false drops (filters only); bytes replace the frame toward this port (filters only). */
  egress?(f: ExtensionFrame, toPort: string): boolean | void | Uint8Array;
  /** Forwarding extensions only. */
  forward?(f: ExtensionFrame, candidates: readonly string[]): ForwardDecision;
  /**
   * Forwarding extensions only: the cache key of a frame whose flow is decided by more than
   * the switch's key (ingress port and MACs) — a tunnel's inner headers. KEY_BY_EXTENSION:
   * `words` (FLOW_KEY_WORDS) are filled with what, together with the ingress port, determines
   * the decision forward() takes and the frame's source MAC (the cached flow refreshes that
   * entry of the MAC table); the switch keys the flow on them instead of its own key, and then
   * asks the offered flow's length() and build() for this same frame with nothing in between.
   * KEY_BY_SWITCH: the switch's key. KEY_NONE: not cacheable (the full path takes it). Called
   * per frame for a port some flow was keyed of by the extension, so it should be cheap; a
   * frame it cannot key (malformed, another kind) is KEY_NONE and the full path counts it.
   */
  flowKey?(sourcePort: string, frame: Uint8Array, info: FrameInfo, words: Int32Array): number;
  checkPortChange?(change: PortChange): string | undefined;
  portChanged?(change: PortChange): void;
  configure?(config: Record<string, unknown>): void;
  status?(): Record<string, unknown>;
  close?(): void;
}

export interface ExtensionDefinition {
  readonly name: string;
  readonly type: ExtensionType;
  readonly description: string;
  create(host: ExtensionHost, config: Record<string, unknown>): SwitchExtension;
}

const registry = new Map<string, ExtensionDefinition>();

export function registerExtension(def: ExtensionDefinition): void {
  if (registry.has(def.name)) throw new VmhostError('SWITCH_EXTENSION_EXISTS', `extension ${def.name} is already registered`, { op: 'register-extension', extension: def.name });
  registry.set(def.name, def);
}

export function findExtension(name: string): ExtensionDefinition | undefined { return registry.get(name); }

export function registeredExtensions(): { name: string; type: ExtensionType; description: string }[] {
  return [...registry.values()].map(({ name, type, description }) => ({ name, type, description }));
}
