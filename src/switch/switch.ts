// VirtualSwitch: one switch — its ports, the per-frame pipeline and the management API the
// daemon drives (New-VMSwitch, Add-/Connect-VMNetworkAdapter, Set-VMNetworkAdapter…).
// Pipeline per frame (DESIGN §4):
//   rx → [MaximumBandwidth limiter] → classify (src/packet) → ingress VLAN → guards →
//   outbound ACLs/meters → learn (MAC, IP ownership; per VLAN or virtual subnet) → ingress
//   extensions → forwarding (default MAC table or the forwarding extension, which may also
//   deliver frames it built; VLAN/PVLAN/virtual subnet membership) → per destination:
//   egress extensions → inbound ACLs/meters → tag → [fair queue toward a congested port] → tx;
//   then port mirroring. Every drop is counted by reason on the port it came from or was going to.
// Frame processing is synchronous; a frame injected while another is being processed (a sink
// answering at once) waits in a queue, so the shared classifier state is never re-entered.
// A known unicast IPv4 flow's decision is kept in a microflow cache (flow-cache.ts): its next
// frames go from the parser straight to forwardCached. With a forwarding extension, only the
// flows it offers with its decisions (extension.ts ExtensionFlow) are cached, under the
// extension's own key where the switch's does not determine them (flowKey: NVGRE's inner headers).
// Depends on every other file of the module.
import { VmhostError } from '../common/errors.ts';
import type { ErrorCode } from '../common/error-codes.ts';
import { FrameInfo, parseFrameInto, popVlan, pushVlan, isMulticastMac, formatIpv4, formatIpv6, IPPROTO_ICMPV6, buildRarpAnnounce } from '../packet/index.ts';
import { type PortPolicy, type PortPolicyPatch, defaultPolicy, mergePolicy } from './policy.ts';
import { PortState } from './port-state.ts';
import { MacTable } from './mac-table.ts';
import { IpOwners, type AddressQuota } from './ip-owners.ts';
import { learningDomain } from './vlan.ts';
import { checkGuards, learnAddresses } from './guards.ts';
import { FlowCache, CachedFlow, NO_ACL_STEP, type AclStep } from './flow-cache.ts';
import { INBOUND, OUTBOUND, type Dir, type MeterCounters } from './acl.ts';
import { RateLimiter, FairQueue } from './bandwidth.ts';
import { addSavedCounters, type SavedPortCounters } from './saved-counters.ts';
import { countDrop, snapshotCounters, newCounters, type PortCounters, type SwitchStats, type SwitchDropReason } from './stats.ts';
import { PcapCapture, type CaptureResult, type CaptureStop, type PcapCaptureOptions } from './capture.ts';
import { SinkIo, frameOf, type PortIo, type PortIoEvents } from './port-io.ts';
import { CoarseClock } from './coarse-clock.ts';
import { SocketPortIo } from './socket-port.ts';
import { UdpUplinkIo } from './uplink.ts';
import { isTeamSettings, TeamUplinkIo, type TeamMemberStatus, type TeamSettings, type UplinkSpec } from './team-uplink.ts';
import { completeSettings, type SwitchConfig, type SwitchSettings, type SwitchSettingsInput, type SwitchType } from './settings.ts';
import { FLOW_STALE, KEY_BY_EXTENSION, KEY_BY_SWITCH, KEY_NONE, findExtension, type Delivery, type ExtensionFlow, type ExtensionFrame, type ExtensionHost, type ExtensionType, type PortChange, type SwitchExtension } from './extension.ts';
import type { ExtendedAcl, PortAcl } from './policy.ts';

export const UPLINK_PORT_ID = 'uplink';
const HOLD_MS = 50;

export type SwitchEvent =
  | { readonly type: 'acl-deny'; readonly switch: string; readonly port: string; readonly direction: 'Inbound' | 'Outbound'; readonly rule: ExtendedAcl | PortAcl }
  | { readonly type: 'guard-drop'; readonly switch: string; readonly port: string; readonly reason: SwitchDropReason }
  | { readonly type: 'port-connection'; readonly switch: string; readonly port: string; readonly connected: boolean }
  /** A capture stopped by itself (its cap reached, a write failed); `port` null for a whole-switch capture. */
  | { readonly type: 'capture-stopped'; readonly switch: string; readonly port: string | null; readonly stop: CaptureStop };

export interface SwitchOptions {
  /** Clock in milliseconds (tests pass a fake one). Default Date.now. */
  readonly now?: () => number;
  /** ACL denies, guard drops, port (dis)connections. Called synchronously: keep it cheap. */
  readonly onEvent?: (e: SwitchEvent) => void;
  /** Group given rw on every port socket (the unprivileged QEMU's, which re-connects after dropping root). Default: none. */
  readonly socketGroup?: number;
  /** The microflow cache (flow-cache.ts); default on. Off only to compare against it (tests, the bench). */
  readonly flowCache?: boolean;
}

export interface AddPortSpec {
  readonly id: string;
  /** The unix socket QEMU connects to; default `<socketDir>/<id>.sock`. */
  readonly socketPath?: string;
  readonly policy?: PortPolicyPatch;
  /** In-process port instead of a socket: frames toward the port are handed to this function. */
  readonly sink?: (frame: Uint8Array) => void;
}

export interface PortInfo {
  readonly id: string;
  readonly kind: 'vm' | 'uplink' | 'sink';
  readonly socketPath: string;
  readonly connected: boolean;
  readonly policy: PortPolicy;
  /** The port's MAC (configured, or the first one it sent when not configured), or null. */
  readonly mac: number | null;
}

export interface ExtensionInfo {
  readonly name: string;
  readonly type: ExtensionType;
  readonly enabled: boolean;
  readonly config: Record<string, unknown>;
  readonly status: Record<string, unknown>;
}

interface ExtensionSlot {
  readonly name: string;
  readonly type: ExtensionType;
  enabled: boolean;
  config: Record<string, unknown>;
  readonly ext: SwitchExtension;
  /** The pending fire of the extension's timer (ExtensionTimer), if it has one. */
  timeout?: NodeJS.Timeout;
}

function addressQuota(s: SwitchSettings): AddressQuota {
  return { perPort: s.maxLearnedAddressesPerPort, total: s.maxLearnedAddresses };
}

function portError(code: ErrorCode, message: string, context: Record<string, string>): VmhostError {
  return new VmhostError(code, message, { op: 'switch-port', ...context });
}

export class VirtualSwitch {
  settings: SwitchSettings;
  private readonly ports = new Map<string, PortState>();
  private portList: PortState[] = [];
  private readonly macs: MacTable;
  private readonly owners: IpOwners;
  private secondaryToPrimary = new Map<number, number>();
  private readonly info = new FrameInfo();
  /** A frame a forwarding extension built, parsed for the destination's inbound ACLs. */
  private readonly builtInfo = new FrameInfo();
  /**
   * The forwarding extension's candidates per source port and VLAN (ports and their ids),
   * made once: they change only with ports and policies (rebuildPvlanMap forgets them).
   */
  private candidates = new Map<PortState, Map<number, { ports: PortState[]; ids: readonly string[] }>>();
  private readonly now: () => number;
  /** The clock frames are stamped with: `now` itself when a test passes its own, else read once per burst (coarse-clock.ts). */
  private readonly frameNow: () => number;
  private readonly onEvent: ((e: SwitchEvent) => void) | undefined;
  private switchCapture: PcapCapture | null = null;
  private slots: ExtensionSlot[] = [];
  private ingressExts: ExtensionSlot[] = [];
  private egressExts: ExtensionSlot[] = [];
  private forwarder: ExtensionSlot | null = null;
  /** What the extensions see of the frame in the pipeline, refilled per frame (the pipeline is never re-entered). */
  private readonly ctx: { -readonly [K in keyof ExtensionFrame]: ExtensionFrame[K] } = { frame: new Uint8Array(0), info: this.info, vlan: 0, domain: 0, vsid: 0, sourcePort: '' };
  /** candidatesOf's last answer: a burst comes from one port. */
  private lastCandidates: { src: PortState | null; vlan: number; c: { ports: PortState[]; ids: readonly string[] } | null } = { src: null, vlan: -1, c: null };
  private busy = false;
  private readonly backlog: [PortState, Uint8Array][] = [];
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  private readonly removedCounters = newCounters();
  /** The ports a flooded (or extension-forwarded) frame goes to; reused, the pipeline is never re-entered. */
  private readonly flood: PortState[] = [];
  private readonly socketGroup: number | undefined;
  private readonly flowCache: FlowCache | null;
  /** Bumped by every change a cached flow may depend on (policies, ports, extensions, settings): older flows are stale. */
  private generation = 0;
  /**
   * The cache is consulted: on, and no ingress or egress extension (whose verdicts are not ours
   * to cache) enabled; a forwarding extension's only where it offers them (cacheExtensionFlow).
   */
  private flowsOn = false;
  /** Some port has ACLs: flows are keyed on their IPv4 fields too. */
  private flowL3 = false;
  private nextPortIndex = 0;

  private constructor(settings: SwitchSettings, opts: SwitchOptions) {
    this.settings = settings;
    this.now = opts.now ?? Date.now;
    this.frameNow = opts.now ?? new CoarseClock(Date.now).now;
    this.onEvent = opts.onEvent;
    this.socketGroup = opts.socketGroup;
    this.flowCache = opts.flowCache === false ? null : new FlowCache();
    this.invalidateFlows();
    this.macs = new MacTable(settings.macAgeingSeconds * 1000);
    this.owners = new IpOwners(settings.macAgeingSeconds * 1000, addressQuota(settings));
    this.timer = setInterval(() => this.sweep(), Math.min(30_000, settings.macAgeingSeconds * 250));
    this.timer.unref();
  }

  /** New-VMSwitch. An External switch opens its uplink now. */
  static async create(input: SwitchSettingsInput, opts: SwitchOptions = {}): Promise<VirtualSwitch> {
    const sw = new VirtualSwitch(completeSettings(input), opts);
    if (sw.settings.uplink) sw.attach(await sw.openUplink(sw.settings.uplink));
    return sw;
  }

  /** Recreates a switch from toConfig()'s output (daemon restart): same ports, sockets, extensions. */
  static async fromConfig(config: SwitchConfig, opts: SwitchOptions = {}): Promise<VirtualSwitch> {
    const sw = await VirtualSwitch.create(config.settings, opts);
    try {
      for (const e of config.extensions) sw.addExtension(e.name, { enabled: e.enabled, config: e.config });
      for (const p of config.ports) await sw.addPort({ id: p.id, socketPath: p.socketPath, policy: p.policy });
    } catch (e) {
      await sw.close();
      throw e;
    }
    return sw;
  }

  get name(): string { return this.settings.name; }

  /** The persisted form (JSON-serialisable). Sink ports are not persisted. */
  toConfig(): SwitchConfig {
    return {
      settings: this.settings,
      ports: this.portList.filter((p) => p.kind === 'vm').map((p) => ({ id: p.id, socketPath: p.socketPath, policy: p.policy })),
      extensions: this.slots.map((s) => ({ name: s.name, enabled: s.enabled, config: s.config })),
    };
  }

  /**
   * Set-VMSwitch -NetAdapterName / -SwitchType: another uplink, or none, under a live switch
   * whose VM ports stay. The new uplink is bound before the old one closes, so a failed bind
   * changes nothing.
   */
  async setUplink(type: SwitchType, uplink: UplinkSpec | undefined): Promise<void> {
    this.assertOpen();
    const settings = completeSettings({ ...this.settings, type, uplink });
    const next = uplink ? await this.openUplink(uplink) : undefined;
    const old = this.ports.get(UPLINK_PORT_ID);
    this.settings = settings;
    if (old) this.detach(old);
    if (next) this.attach(next);
    if (old) await this.dispose(old);
  }

  private async openUplink(u: UplinkSpec): Promise<PortState> {
    const st = new PortState(UPLINK_PORT_ID, 'uplink', '', defaultPolicy());
    st.io = isTeamSettings(u) ? await TeamUplinkIo.open(u, this.ioEvents(st)) : await UdpUplinkIo.open(u, this.ioEvents(st));
    return st;
  }

  /**
   * A team uplink's members, algorithm or enabled adapters changed (LBFO cmdlets,
   * Disable-NetAdapter): applied to the live team, whose unchanged members keep their sockets
   * (a re-bind with setUplink would bind the same UDP ports twice).
   */
  async setTeam(team: TeamSettings): Promise<void> {
    const io = this.teamIo();
    if (!io) throw new VmhostError('SWITCH_UPLINK', `switch ${this.name} has no team uplink`, { op: 'team', switch: this.name, team: team.team });
    await io.apply(team);
    this.settings = completeSettings({ ...this.settings, uplink: team });
  }

  /** Get-NetLbfoTeamMember: the members of the switch's team uplink, or undefined without one. */
  teamStatus(): TeamMemberStatus[] | undefined { return this.teamIo()?.status(); }

  private teamIo(): TeamUplinkIo | undefined {
    const io = this.ports.get(UPLINK_PORT_ID)?.io;
    return io instanceof TeamUplinkIo ? io : undefined;
  }

  /** Set-VMSwitch: ageing, frame size, bandwidth mode and default-flow values (not name/type/uplink). */
  setSettings(patch: Partial<Omit<SwitchSettings, 'name' | 'type' | 'uplink'>>): SwitchSettings {
    this.settings = completeSettings({ ...this.settings, ...patch });
    this.macs.ageingMs = this.settings.macAgeingSeconds * 1000;
    this.owners.ageingMs = this.settings.macAgeingSeconds * 1000;
    this.owners.quota = addressQuota(this.settings);
    for (const p of this.portList) p.fairQueue?.refreshWeights();
    this.invalidateFlows();
    return this.settings;
  }

  // ---- ports ----

  /** Add-VMNetworkAdapter / Connect-VMNetworkAdapter: a port listening for its VM. */
  async addPort(spec: AddPortSpec): Promise<{ id: string; socketPath: string }> {
    this.assertOpen();
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(spec.id) || spec.id === UPLINK_PORT_ID) {
      throw portError('SWITCH_BAD_PORT_ID', `bad port id ${JSON.stringify(spec.id)} (letters, digits, . _ -; not "${UPLINK_PORT_ID}")`, { port: spec.id });
    }
    if (this.ports.has(spec.id)) throw portError('SWITCH_PORT_EXISTS', `port ${spec.id} already exists on switch ${this.name}`, { port: spec.id });
    const policy = mergePolicy(defaultPolicy(), spec.policy ?? {});
    this.veto({ op: 'add', portId: spec.id, policy });
    let socketPath = '';
    if (!spec.sink) {
      socketPath = spec.socketPath ?? (this.settings.socketDir ? `${this.settings.socketDir}/${spec.id}.sock` : '');
      if (!socketPath) throw portError('SWITCH_NO_SOCKET_PATH', `port ${spec.id}: no socketPath and the switch has no socketDir`, { port: spec.id });
    }
    const st = new PortState(spec.id, spec.sink ? 'sink' : 'vm', socketPath, policy);
    st.io = spec.sink ? new SinkIo(spec.sink) : await SocketPortIo.listen(socketPath, this.ioEvents(st), this.socketGroup);
    if (this.closed || this.ports.has(spec.id)) { await st.io.close(); this.assertOpen(); throw portError('SWITCH_PORT_EXISTS', `port ${spec.id} already exists`, { port: spec.id }); }
    this.attach(st);
    this.applyShaping(st);
    this.owners.setFixed(st.id, st.fixedAddresses(), this.now());
    this.notify({ op: 'add', portId: spec.id, policy });
    return { id: st.id, socketPath };
  }

  /** Set-VMNetworkAdapter / -Vlan / ACL cmdlets: changes take effect on the next frame. */
  setPortPolicy(id: string, patch: PortPolicyPatch): PortPolicy {
    const st = this.mustPort(id);
    return this.applyPolicy(st, mergePolicy(st.policy, patch));
  }

  /** Replaces the whole policy (what the daemon persisted) rather than patching it. */
  replacePortPolicy(id: string, policy: PortPolicy): PortPolicy {
    const st = this.mustPort(id);
    return this.applyPolicy(st, mergePolicy(defaultPolicy(), policy));
  }

  private applyPolicy(st: PortState, policy: PortPolicy): PortPolicy {
    const id = st.id;
    const previous = st.policy;
    this.veto({ op: 'set', portId: id, policy, previous });
    st.compile(policy);
    if (JSON.stringify(previous.vlan) !== JSON.stringify(policy.vlan) || previous.virtualSubnetId !== policy.virtualSubnetId) this.macs.flushPort(id);
    this.rebuildPvlanMap();
    this.invalidateFlows();
    this.applyShaping(st);
    this.owners.setFixed(id, st.fixedAddresses(), this.now());
    for (const p of this.portList) p.fairQueue?.refreshWeights();
    this.notify({ op: 'set', portId: id, policy, previous });
    return policy;
  }

  /** Remove-VMNetworkAdapter / Disconnect-VMNetworkAdapter. */
  async removePort(id: string): Promise<void> {
    const st = this.mustPort(id);
    if (st.kind === 'uplink') throw portError('SWITCH_PORT_UPLINK', 'the uplink is removed with the switch', { port: id });
    this.veto({ op: 'remove', portId: id });
    this.detach(st);
    await this.dispose(st);
    this.notify({ op: 'remove', portId: id });
  }

  /** A detached port's queues, capture and socket go; its counters stay in the switch totals. */
  private async dispose(st: PortState): Promise<void> {
    st.limiter?.close();
    st.fairQueue?.close();
    st.capture?.close();
    for (const p of this.portList) p.fairQueue?.removeSource(st.id);
    this.accumulate(st.counters);
    await st.io?.close();
  }

  port(id: string): PortInfo {
    const st = this.mustPort(id);
    return { id, kind: st.kind, socketPath: st.socketPath, connected: st.io?.connected ?? false, policy: st.policy, mac: st.guards.mac >= 0 ? st.guards.mac : null };
  }

  listPorts(): PortInfo[] { return this.portList.map((p) => this.port(p.id)); }

  /**
   * A RARP in the name of the station behind port `id`, as if the port had sent it: this switch
   * learns `mac` there at once and floods the frame — out of the uplink too, so the switches
   * beyond it learn the same. Move-VM's destination calls it the moment the guest's state has
   * arrived, before the guest runs: QEMU's own announce waits for the guest to run (a stopped
   * NIC's frames are held), and until then the peers' frames went to the source, where the
   * stopped guest lost them. Frames for `mac` now wait in the paused QEMU and are answered when
   * it resumes. Not counted as the port's traffic; a whole-switch capture sees it.
   */
  announce(id: string, mac: Uint8Array): void {
    this.assertOpen();
    const st = this.mustPort(id);
    const frame = buildRarpAnnounce(mac);
    this.switchCapture?.write(frame);
    this.process(st, frame);
  }

  /** Addresses the port owns for the ARP/ND guard (configured and learned), as text. */
  portAddresses(id: string): string[] {
    this.mustPort(id);
    return this.owners.addressesOf(id, this.now()).map((a) => {
      if (typeof a === 'number') return formatIpv4(a);
      const b = new Uint8Array(16);
      for (let i = 0; i < 8; i++) { const c = a.charCodeAt(i); b[2 * i] = c >>> 8; b[2 * i + 1] = c & 0xff; }
      return formatIpv6(b);
    });
  }

  // ---- statistics ----

  portStats(id: string): PortCounters { return snapshotCounters(this.mustPort(id).counters); }

  stats(): SwitchStats {
    const total = snapshotCounters(this.removedCounters);
    const ports: Record<string, PortCounters> = {};
    for (const p of this.portList) {
      ports[p.id] = snapshotCounters(p.counters);
      total.rxFrames += p.counters.rxFrames; total.rxBytes += p.counters.rxBytes;
      total.txFrames += p.counters.txFrames; total.txBytes += p.counters.txBytes;
      for (const [r, n] of Object.entries(p.counters.drops)) total.drops[r] = (total.drops[r] ?? 0) + n;
    }
    return { ...total, macEntries: this.macs.size, ports };
  }

  /** The microflow cache's hits and misses since the switch was made (null: the cache is off). */
  flowCacheStats(): { hits: number; misses: number } | null {
    return this.flowCache ? { hits: this.flowCache.hits, misses: this.flowCache.misses } : null;
  }

  /** Metering ACL counters of a port (Add-VMNetworkAdapterAcl -Action Meter), in ACL order. */
  meterCounters(id: string): MeterCounters[] { return this.mustPort(id).acls.meters.map((m) => ({ ...m })); }

  /** Counters a previous process saved for this port (portStats + meterCounters), added to its own. */
  restoreCounters(id: string, saved: SavedPortCounters): void { addSavedCounters(this.mustPort(id), saved); }

  macTable(): { domain: number; mac: number; port: string; ageMs: number }[] { return this.macs.entries(this.now()); }

  // ---- capture ----

  /** Starts a pcap capture of one port (frames it sent and received) or, with null, of every frame entering the switch. */
  startCapture(portId: string | null, pcapPath: string, opts: Omit<PcapCaptureOptions, 'onStop'> = {}): void {
    const target = portId === null ? null : this.mustPort(portId);
    if ((target ? target.capture : this.switchCapture) !== null) throw portError('SWITCH_CAPTURE_ACTIVE', `a capture is already running on ${portId ?? 'the switch'}`, { port: portId ?? '' });
    const c: PcapCapture = new PcapCapture(pcapPath, {
      ...opts,
      onStop: (stop) => {
        // Only if it is still the current capture there (it may be replaced by then).
        if (target ? target.capture === c : this.switchCapture === c) { if (target) target.capture = null; else this.switchCapture = null; }
        this.onEvent?.({ type: 'capture-stopped', switch: this.name, port: portId, stop });
      },
    });
    if (target) target.capture = c; else this.switchCapture = c;
  }

  stopCapture(portId: string | null): CaptureResult | null {
    const target = portId === null ? null : this.mustPort(portId);
    const c = target ? target.capture : this.switchCapture;
    if (!c) return null;
    if (target) target.capture = null; else this.switchCapture = null;
    return c.close();
  }

  // ---- extensions ----

  /** Adds a registered extension at the end (or `position`) of this switch's pipeline. */
  addExtension(name: string, opts: { enabled?: boolean; config?: Record<string, unknown>; position?: number } = {}): void {
    const def = findExtension(name);
    if (!def) throw new VmhostError('SWITCH_NO_EXTENSION', `no extension named ${name}`, { op: 'add-extension', extension: name });
    if (this.slots.some((s) => s.name === name)) throw new VmhostError('SWITCH_EXTENSION_EXISTS', `extension ${name} is already on switch ${this.name}`, { op: 'add-extension', extension: name });
    const config = opts.config ?? {};
    const slot: ExtensionSlot = { name, type: def.type, enabled: false, config, ext: def.create(this.extensionHost(), config) };
    this.slots.splice(opts.position ?? this.slots.length, 0, slot);
    if (opts.enabled !== false) {
      try { this.enableExtension(name); } catch (e) { this.slots = this.slots.filter((s) => s !== slot); slot.ext.close?.(); throw e; }
    }
    this.armTimer(slot);
    this.rebuildExtensions();
  }

  removeExtension(name: string): void {
    const slot = this.slot(name);
    this.slots = this.slots.filter((s) => s !== slot);
    clearTimeout(slot.timeout);
    slot.ext.close?.();
    this.rebuildExtensions();
  }

  /** How many extension timers are pending (Get-VMSwitchExtension's tests: none after a removal or close). */
  get extensionTimers(): number { return this.slots.filter((s) => s.timeout !== undefined).length; }

  /** Schedules the next fire of the slot's ExtensionTimer, if it has one; it never keeps the process alive. */
  private armTimer(slot: ExtensionSlot): void {
    const t = slot.ext.timer;
    slot.timeout = undefined;
    if (!t || this.closed || !this.slots.includes(slot)) return;
    slot.timeout = setTimeout(() => {
      slot.timeout = undefined;
      if (this.closed || !this.slots.includes(slot)) return;
      if (slot.enabled) this.sendBuilt(t.fire());
      this.armTimer(slot);
    }, Math.max(1, t.nextDelayMs()));
    slot.timeout.unref();
  }

  /** Frames an extension built outside the pipeline (its timer's), to connected ports; counted and captured as any sent frame. */
  private sendBuilt(deliveries: readonly Delivery[]): void {
    for (const { port, frame } of deliveries) {
      const dst = this.ports.get(port);
      if (dst?.io?.connected) this.transmit(dst, frame, 0, frame.length);
    }
  }

  /** Enable-VMSwitchExtension. At most one forwarding extension may be enabled. */
  enableExtension(name: string): void {
    const slot = this.slot(name);
    if (slot.type === 'forwarding' && this.slots.some((s) => s !== slot && s.enabled && s.type === 'forwarding')) {
      throw new VmhostError('SWITCH_FORWARDING_EXTENSION', `switch ${this.name} already has an enabled forwarding extension`, { op: 'enable-extension', extension: name });
    }
    slot.enabled = true;
    this.rebuildExtensions();
  }

  disableExtension(name: string): void { this.slot(name).enabled = false; this.rebuildExtensions(); }

  /** Moves an extension to `position` in the pipeline order. */
  moveExtension(name: string, position: number): void {
    const slot = this.slot(name);
    this.slots = this.slots.filter((s) => s !== slot);
    this.slots.splice(Math.max(0, Math.min(position, this.slots.length)), 0, slot);
    this.rebuildExtensions();
  }

  configureExtension(name: string, config: Record<string, unknown>): void {
    const slot = this.slot(name);
    slot.ext.configure?.(config);
    slot.config = config;
  }

  extensions(): ExtensionInfo[] {
    return this.slots.map((s) => ({ name: s.name, type: s.type, enabled: s.enabled, config: s.config, status: s.ext.status?.() ?? {} }));
  }

  // ---- frames ----

  /** Processes `frame` as if the port's peer had sent it (tests, the bench, the host's own vNIC). Takes ownership of the bytes. */
  inject(portId: string, frame: Uint8Array): void { this.receive(this.mustPort(portId), frame); }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.switchCapture?.close();
    this.switchCapture = null;
    for (const s of this.slots) { clearTimeout(s.timeout); s.timeout = undefined; s.ext.close?.(); }
    for (const p of this.portList) { p.limiter?.close(); p.fairQueue?.close(); p.capture?.close(); }
    await Promise.all(this.portList.map((p) => p.io?.close()));
    this.ports.clear();
    this.portList = [];
  }

  // ---- internals ----

  private assertOpen(): void {
    if (this.closed) throw new VmhostError('SWITCH_CLOSED', `switch ${this.name} is closed`, { op: 'switch' });
  }

  private mustPort(id: string): PortState {
    const st = this.ports.get(id);
    if (!st) throw portError('SWITCH_NO_PORT', `no port ${id} on switch ${this.name}`, { port: id });
    return st;
  }

  private slot(name: string): ExtensionSlot {
    const s = this.slots.find((x) => x.name === name);
    if (!s) throw new VmhostError('SWITCH_NO_EXTENSION', `extension ${name} is not on switch ${this.name}`, { op: 'extension', extension: name });
    return s;
  }

  private rebuildExtensions(): void {
    const on = this.slots.filter((s) => s.enabled);
    this.ingressExts = on.filter((s) => s.type !== 'forwarding' && s.ext.ingress);
    this.egressExts = on.filter((s) => s.type !== 'forwarding' && s.ext.egress);
    const forwarder = on.find((s) => s.type === 'forwarding' && s.ext.forward) ?? null;
    // Which ports probe the cache, and by whose key, is the forwarder's to say: another one starts afresh.
    if (forwarder !== this.forwarder) for (const p of this.portList) { p.extFlows = false; p.extKeyed = false; }
    this.forwarder = forwarder;
    this.invalidateFlows();
  }

  /** Every cached flow is stale from now on; what the cache keys on is derived again from the policies. */
  private invalidateFlows(): void {
    this.generation++;
    this.flowsOn = this.flowCache !== null && this.ingressExts.length === 0 && this.egressExts.length === 0;
    this.flowL3 = this.portList.some((p) => p.policed && !p.acls.empty);
  }

  private veto(change: PortChange): void {
    for (const s of this.slots) {
      if (!s.enabled || !s.ext.checkPortChange) continue;
      const why = s.ext.checkPortChange(change);
      if (why) throw new VmhostError('SWITCH_VETOED', `extension ${s.name} refused: ${why}`, { op: `port-${change.op}`, port: change.portId, extension: s.name });
    }
  }

  private notify(change: PortChange): void {
    for (const s of this.slots) if (s.enabled) s.ext.portChanged?.(change);
  }

  private extensionHost(): ExtensionHost {
    return {
      switchName: this.name,
      // The per-frame clock: a forwarding extension looks MACs up once per frame.
      lookupMac: (domain, mac) => this.macs.lookup(domain, mac, this.frameNow()),
      portIds: () => this.portList.map((p) => p.id),
      portPolicy: (id) => this.ports.get(id)?.policy,
      now: () => this.now(),
      lend: (id, length) => {
        // Not toward a fair queue: it holds frames past the loan.
        const p = this.ports.get(id);
        return p === undefined || p.fairQueue !== null || p.io?.lend === undefined ? null : p.io.lend(length);
      },
    };
  }

  private ioEvents(st: PortState): PortIoEvents {
    return {
      onFrame: (f, framed) => this.receive(st, f, framed === true),
      onError: (reason) => this.drop(st, reason),
      onConnection: (connected) => {
        if (!connected) this.macs.flushPort(st.id);
        this.invalidateFlows();
        this.onEvent?.({ type: 'port-connection', switch: this.name, port: st.id, connected });
      },
    };
  }

  private attach(st: PortState): void {
    this.ports.set(st.id, st);
    st.attached = true;
    st.index = this.nextPortIndex++;
    this.portList = [...this.ports.values()];
    this.rebuildPvlanMap();
    this.invalidateFlows();
  }

  private detach(st: PortState): void {
    this.ports.delete(st.id);
    st.attached = false;
    this.portList = [...this.ports.values()];
    this.macs.flushPort(st.id);
    this.owners.forgetPort(st.id);
    this.rebuildPvlanMap();
    this.invalidateFlows();
  }

  private accumulate(c: PortCounters): void {
    const t = this.removedCounters;
    t.rxFrames += c.rxFrames; t.rxBytes += c.rxBytes; t.txFrames += c.txFrames; t.txBytes += c.txBytes;
    for (const [r, n] of Object.entries(c.drops)) t.drops[r] = (t.drops[r] ?? 0) + n;
  }

  private rebuildPvlanMap(): void {
    this.candidates = new Map();
    this.lastCandidates = { src: null, vlan: -1, c: null };
    const m = new Map<number, number>();
    for (const p of this.portList) {
      const v = p.vlan;
      if (v.kind === 'isolated' || v.kind === 'community') m.set(v.own, v.primary);
      else if (v.kind === 'promiscuous') for (const s of v.set) m.set(s, v.primary);
    }
    this.secondaryToPrimary = m;
  }

  private weightOf(id: string): number {
    const p = this.ports.get(id);
    const s = this.settings;
    if (s.minimumBandwidthMode === 'Absolute') return p?.policy.bandwidth.minimumBandwidthAbsolute || s.defaultFlowMinimumBandwidthAbsolute;
    return p?.policy.bandwidth.minimumBandwidthWeight || s.defaultFlowMinimumBandwidthWeight;
  }

  private applyShaping(st: PortState): void {
    const max = st.policy.bandwidth.maximumBandwidth;
    if (max > 0) {
      if (st.limiter) st.limiter.setRate(max);
      else {
        st.limiter = new RateLimiter(max, this.now === Date.now ? () => performance.now() : this.now, (f) => this.process(st, f), () => this.drop(st, 'rate-limit'),
          (pause) => (pause ? st.hold() : st.release()));
      }
    } else if (st.limiter) { st.limiter.close(); st.limiter = null; }
    const cap = st.policy.egressCapacity;
    if (cap > 0) {
      if (st.fairQueue) st.fairQueue.setCapacity(cap);
      else st.fairQueue = new FairQueue(cap, this.now === Date.now ? () => performance.now() : this.now, (src) => this.weightOf(src), (f) => this.transmit(st, f, 0, f.length));
    } else if (st.fairQueue) { st.fairQueue.close(); st.fairQueue = null; }
  }

  private sweep(): void {
    const now = this.now();
    this.macs.sweep(now);
    this.owners.sweep(now);
    for (const p of this.portList) p.acls.sweep(now);
  }

  private drop(st: PortState, reason: SwitchDropReason): void {
    countDrop(st.counters, reason);
  }

  /** `framed`: see PortIo.send; kept while the frame is forwarded unchanged. */
  private receive(st: PortState, frame: Uint8Array, framed = false): void {
    if (this.closed) return;
    const c = st.counters;
    c.rxFrames++;
    c.rxBytes += frame.length;
    this.switchCapture?.write(frame);
    st.capture?.write(frame);
    if (st.limiter) { st.limiter.offer(frame); return; }
    this.process(st, frame, framed);
  }

  private process(src: PortState, frame: Uint8Array, framed = false): void {
    if (this.busy) { this.backlog.push([src, Uint8Array.prototype.slice.call(frame)]); return; }
    this.busy = true;
    try {
      this.pipeline(src, frame, framed);
      while (this.backlog.length > 0) { const [s, f] = this.backlog.shift()!; this.pipeline(s, f, false); }
    } finally {
      this.busy = false;
    }
  }

  private pipeline(src: PortState, input: Uint8Array, inputFramed: boolean): void {
    if (!src.attached) return;
    const info = this.info;
    let frame = input;
    parseFrameInto(frame, info, this.settings.maxFrameBytes);
    if (!info.ok) { this.drop(src, info.reason!); return; }
    const now = this.frameNow();
    // A flow the cache may hold: untagged IPv4 from a unicast source, with no extension in the
    // path but a forwarding one — but not what the guards judge by more than the key: a
    // fragment, a DHCP server message, ICMPv6 (its type, even carried in IPv4). With a
    // forwarding extension, probed only from ports it offered flows of (its others all miss).
    const cached = this.flowsOn && info.vlanId < 0 && info.ipVersion === 4 && !info.fragment && !info.dhcpFromServer && info.ipProtocol !== IPPROTO_ICMPV6 && !isMulticastMac(info.src);
    const probed = cached && (this.forwarder === null || src.extFlows);
    if (probed) {
      const flow = src.extKeyed ? this.probeKeyed(src, frame) : this.flowCache!.probe(src.index, info, this.flowL3);
      if (flow !== null && this.forwardCached(src, flow, frame, inputFramed, now)) return;
    }

    // Ingress VLAN: the frame travels untagged inside the switch.
    const vlan = src.vlan.ingress(info.vlanId);
    if (vlan < 0) { this.drop(src, 'vlan-not-allowed'); return; }
    if (info.vlanId >= 0) { frame = popVlan(frame); parseFrameInto(frame, info, this.settings.maxFrameBytes); }
    const framed = inputFramed && frame === input;

    if (src.policed) {
      const g = checkGuards(src.guards, src.id, info, frame, this.owners, now);
      if (g) { this.guardDropped(src, g); return; }
      const denied = src.acls.check(OUTBOUND, info, frame, now);
      if (denied) { this.aclDenied(src, OUTBOUND, denied); return; }
      learnAddresses(src.id, info, frame, this.owners, now);
    }
    const domain = learningDomain(vlan, this.secondaryToPrimary, src.vsid);
    if (!isMulticastMac(info.src)) this.macs.learn(domain, info.src, src.id, now);

    let ctx: ExtensionFrame | null = null;
    if (this.ingressExts.length > 0 || this.egressExts.length > 0 || this.forwarder) {
      const c = this.ctx;
      c.frame = frame; c.vlan = vlan; c.domain = domain; c.vsid = src.vsid; c.sourcePort = src.id;
      ctx = c;
      for (const s of this.ingressExts) {
        const verdict = s.ext.ingress!(ctx);
        if (verdict === false && s.type === 'filter') { this.drop(src, 'extension'); return; }
      }
    }

    // Emptied only when not empty: setting an array's length is a runtime call, once per frame.
    const out = this.flood;
    if (out.length !== 0) out.length = 0;
    let forwarded = false;
    if (this.forwarder) {
      const cand = this.candidatesOf(src, vlan);
      const decision = this.forwarder.ext.forward!(ctx!, cand.ids);
      if (decision !== 'default') {
        if (!Array.isArray(decision)) {
          const d = decision as { deliver: readonly Delivery[]; drop?: string; flow?: ExtensionFlow };
          if (cached && d.flow !== undefined && d.deliver.length === 1 && d.drop === undefined) this.cacheExtensionFlow(src, domain, vlan, frame, probed, d.flow, d.deliver[0]!);
          this.deliver(src, frame, framed, vlan, ctx!, now, d);
          return;
        }
        const chosen = new Set(decision as readonly string[]);
        for (const p of cand.ports) if (chosen.has(p.id)) out.push(p);
        if (out.length === 0) { this.drop(src, 'unknown-destination'); return; }
        forwarded = true;
      }
    }
    // Default forwarding: a known unicast destination (the common case) goes straight to egress;
    // otherwise the ports this frame may reach are collected (never back out of its ingress port).
    if (!forwarded) {
      const known = isMulticastMac(info.dst) ? undefined : this.macs.lookup(domain, info.dst, now);
      const dst = known === undefined ? undefined : this.ports.get(known);
      if (dst) {
        if (dst === src) return; // the destination is behind the ingress port: nothing to do
        if (!this.admits(src, dst, vlan)) { this.drop(dst, dst.vlan.isPvlan || src.vlan.isPvlan ? 'pvlan-isolation' : 'vlan-not-allowed'); return; }
        // What a forwarding extension deferred is not cached: its 'default' may rest on more than the key.
        if (cached && this.forwarder === null) this.cacheFlow(src, dst, domain, vlan, frame);
        this.unicastDone(src, dst, frame, framed, this.egress(src, dst, frame, framed, vlan, ctx, now));
        return;
      }
      if (out.length !== 0) out.length = 0;
      for (const p of this.portList) {
        if (p === src || !p.io?.connected) continue; // a port whose VM is off is no flood candidate (not a drop)
        if (this.admits(src, p, vlan)) out.push(p);
        else if (p.vlan.isPvlan && src.vlan.isPvlan && p.vlan.primary === src.vlan.primary) this.drop(p, 'pvlan-isolation');
      }
    }

    let mirror = src.mirrorSource;
    for (let i = 0; i < out.length; i++) {
      const dst = out[i]!;
      if (this.egress(src, dst, frame, framed, vlan, ctx, now) && dst.mirrorSource) mirror = true;
    }
    if (out.length === 1 && src.kind === 'vm') this.backpressure(src, out[0]!);
    if (mirror) this.mirror(src, frame, framed, ...out);
  }

  /** After a unicast frame's egress (`sent`: it was): flow control toward its destination, then mirroring. */
  private unicastDone(src: PortState, dst: PortState, frame: Uint8Array, framed: boolean, sent: boolean): void {
    if (src.kind === 'vm') this.backpressure(src, dst);
    if (src.mirrorSource || (sent && dst.mirrorSource)) this.mirror(src, frame, framed, dst);
  }

  /**
   * Remembers the decision the pipeline just took for a cacheable frame toward a known unicast
   * destination that VLAN membership admits — unless the destination's ACLs deny the frame
   * (denials are left to the full path). `frame` is the one parsed into this.info.
   */
  private cacheFlow(src: PortState, dst: PortState, domain: number, vlan: number, frame: Uint8Array): void {
    const info = this.info;
    const srcMac = this.macs.entry(domain, info.src), dstMac = this.macs.entry(domain, info.dst);
    if (srcMac === null || dstMac === null) return; // the table was full: the source was not learned
    let inbound = NO_ACL_STEP;
    if (dst.policed) {
      if (!dst.acls.stateful && dst.acls.denies(INBOUND, info, frame)) return;
      inbound = this.aclStep(dst, INBOUND, frame);
    }
    const outbound = src.policed ? this.aclStep(src, OUTBOUND, frame) : NO_ACL_STEP;
    this.flowCache!.insert(new CachedFlow(this.generation, dst, srcMac, dstMac, dst.vlan.egressTag(vlan), outbound, inbound));
  }

  /**
   * Remembers the one delivery a forwarding extension decided for a cacheable frame, with the
   * flow it offered for it (the frame as it is, or bytes the extension builds per frame: then
   * only toward a port whose ACLs and tag do not read them). Not toward the ingress port or a
   * mirror source (deliver() mirrors those otherwise than forwardCached). `probed`: the
   * pipeline probed the cache for this frame (else it is probed here, for the key).
   */
  private cacheExtensionFlow(src: PortState, domain: number, vlan: number, frame: Uint8Array, probed: boolean, ext: ExtensionFlow, d: Delivery): void {
    const dst = this.ports.get(d.port), info = this.info;
    if (dst === undefined || dst === src || dst.mirrorSource) return;
    const built = d.frame !== frame;
    if (built && dst.policed && (!dst.acls.empty || dst.vlan.egressTag(0) > 0)) return;
    const srcMac = this.macs.entry(domain, info.src);
    if (srcMac === null) return;
    let inbound = NO_ACL_STEP;
    if (!built && dst.policed) {
      if (!dst.acls.stateful && dst.acls.denies(INBOUND, info, frame)) return;
      inbound = this.aclStep(dst, INBOUND, frame);
    }
    const outbound = src.policed ? this.aclStep(src, OUTBOUND, frame) : NO_ACL_STEP;
    const fc = this.flowCache!;
    const keyBy = this.forwarder?.ext.flowKey?.(src.id, frame, info, fc.extWords) ?? KEY_BY_SWITCH;
    if (keyBy === KEY_NONE) return;
    if (keyBy === KEY_BY_EXTENSION) { fc.probeKeyed(src.index); src.extKeyed = true; }
    else if (!probed) fc.probe(src.index, info, this.flowL3);
    src.extFlows = true;
    fc.insert(new CachedFlow(this.generation, dst, srcMac, null, built ? -1 : dst.vlan.egressTag(vlan), outbound, inbound, ext));
  }

  /**
   * The cached flow of a frame from a port whose flows the forwarding extension keys
   * (SwitchExtension.flowKey), or null: a frame it does not key takes the full path.
   */
  private probeKeyed(src: PortState, frame: Uint8Array): CachedFlow | null {
    const fc = this.flowCache!;
    return this.forwarder?.ext.flowKey?.(src.id, frame, this.info, fc.extWords) === KEY_BY_EXTENSION ? fc.probeKeyed(src.index) : null;
  }

  private aclStep(p: PortState, dir: Dir, frame: Uint8Array): AclStep {
    if (p.acls.stateful) return { meters: [], check: true };
    const meters = p.acls.metersFor(dir, this.info, frame);
    return meters.length === 0 ? NO_ACL_STEP : { meters, check: false };
  }

  /**
   * A frame of a cached flow: what the full path would do to it, where the cache says how. False
   * (nothing done) when the flow is stale: the generation moved, the source MAC moved or went,
   * the destination's entry moved, went or aged, or the extension whose flow it is says so
   * (ExtensionFlow.length, asked before anything is done). Per frame, as on the full path: the source
   * MAC's age, stateful ACLs, Meter counters, egress, flow control, mirroring; the source
   * address's claim (and the ARP guard on it) whenever the address, the time or the claim
   * table changed since a cached flow of the port last did it — until then they would answer
   * the same (and every flow's first frame took the full path, guards included).
   */
  private forwardCached(src: PortState, flow: CachedFlow, frame: Uint8Array, framed: boolean, now: number): boolean {
    const dst = flow.dst, dstMac = flow.dstMac, ext = flow.ext;
    if (flow.generation !== this.generation || flow.srcMac.port !== src.id) return false;
    if (dstMac !== null && (dstMac.port !== dst.id || now - dstMac.seen > this.macs.ageingMs)) return false;
    const built = ext === null ? -1 : ext.length(frame.length);
    if (built === FLOW_STALE) return false;
    const info = this.info;
    if (src.policed) {
      const owners = this.owners;
      const refresh = src.claimedAt !== now || src.claimedVersion !== owners.version || src.claimedAddr !== info.ipSrc;
      if (refresh && src.guards.arpGuard) {
        const g = checkGuards(src.guards, src.id, info, frame, owners, now);
        if (g) { this.guardDropped(src, g); return true; }
      }
      if (!this.aclPasses(src, flow.outbound, OUTBOUND, frame, now)) return true;
      if (refresh) {
        learnAddresses(src.id, info, frame, owners, now);
        src.claimedAt = now; src.claimedVersion = owners.version; src.claimedAddr = info.ipSrc;
      }
    }
    flow.srcMac.seen = now;
    if (dst.policed && !this.aclPasses(dst, flow.inbound, INBOUND, frame, now)) return true;
    if (built > 0) {
      // Part of the frame as it lies (a tunnel's inner frame), handed on without a view of it.
      const at = ext!.offset();
      if (at >= 0 && dst.fairQueue === null) { this.unicastDone(src, dst, frame, framed, this.transmit(dst, frame, at, built, src.id)); return true; }
      // Built where the destination lends (the uplink's send batch: no copy after), as deliver() would have it.
      const wire = ext!.build(frame, info, dst.fairQueue === null && dst.io?.lend !== undefined ? dst.io.lend(built) : null);
      this.unicastDone(src, dst, frame, framed, this.emit(src, dst, wire, false, -1, 0));
      return true;
    }
    this.unicastDone(src, dst, frame, framed, this.emit(src, dst, frame, framed, flow.tag, info.pcp));
    return true;
  }

  /** One side's ACLs for a cached flow: its Meter counters bumped, or its stateful ACLs checked (a denial dropped and reported). */
  private aclPasses(p: PortState, step: AclStep, dir: Dir, frame: Uint8Array, now: number): boolean {
    if (step.check) {
      const denied = p.acls.check(dir, this.info, frame, now);
      if (denied) this.aclDenied(p, dir, denied);
      return denied === null;
    }
    const ms = step.meters, n = this.info.length;
    for (let i = 0; i < ms.length; i++) {
      const m = ms[i]!;
      if (dir === OUTBOUND) { m.outboundFrames++; m.outboundBytes += n; } else { m.inboundFrames++; m.inboundBytes += n; }
    }
    return true;
  }

  private guardDropped(p: PortState, reason: SwitchDropReason): void {
    this.drop(p, reason);
    this.onEvent?.({ type: 'guard-drop', switch: this.name, port: p.id, reason });
  }

  private aclDenied(p: PortState, dir: Dir, rule: ExtendedAcl | PortAcl): void {
    this.drop(p, 'acl-deny');
    this.onEvent?.({ type: 'acl-deny', switch: this.name, port: p.id, direction: dir === OUTBOUND ? 'Outbound' : 'Inbound', rule });
  }

  private candidatesOf(src: PortState, vlan: number): { ports: PortState[]; ids: readonly string[] } {
    const last = this.lastCandidates;
    if (last.src === src && last.vlan === vlan) return last.c!;
    let byVlan = this.candidates.get(src);
    if (!byVlan) { byVlan = new Map(); this.candidates.set(src, byVlan); }
    let c = byVlan.get(vlan);
    if (!c) {
      const ports = this.portList.filter((p) => p !== src && this.admits(src, p, vlan));
      c = { ports, ids: ports.map((p) => p.id) };
      byVlan.set(vlan, c);
    }
    last.src = src; last.vlan = vlan; last.c = c;
    return c;
  }

  /**
   * A forwarding extension's deliveries: each frame to its port through the usual egress
   * (egress extensions, inbound ACLs on the frame as delivered, fair queue, counters). A frame
   * the extension built is untagged (VLAN 0) and not framed.
   */
  private deliver(src: PortState, frame: Uint8Array, framed: boolean, vlan: number, ctx: ExtensionFrame, now: number, d: { deliver: readonly Delivery[]; drop?: string }): void {
    if (d.drop !== undefined) this.drop(src, d.drop as SwitchDropReason);
    for (const { port, frame: f } of d.deliver) {
      const dst = this.ports.get(port);
      if (!dst) { this.drop(src, 'unknown-destination'); continue; }
      if (f === frame) { this.egress(src, dst, f, framed, vlan, ctx, now); continue; }
      // Parsed only for what reads it: the destination's ACLs, or a tag's priority.
      if (dst.policed && (!dst.acls.empty || dst.vlan.egressTag(0) > 0)) parseFrameInto(f, this.builtInfo, 0x10000);
      else this.builtInfo.pcp = 0;
      this.egress(src, dst, f, false, 0, ctx, now, this.builtInfo);
    }
    if (src.mirrorSource) this.mirror(src, frame, framed);
  }

  /** Port mirroring: a copy to every Destination port that did not get the frame already. */
  private mirror(src: PortState, frame: Uint8Array, framed: boolean, ...got: PortState[]): void {
    for (const p of this.portList) if (p.mirrorDest && p !== src && !got.includes(p)) this.transmit(p, frame, 0, frame.length, src.id, framed);
  }

  /**
   * Flow control for unicast: while the destination's socket is congested, stop reading the
   * sender (its guest's NIC queue fills and its TCP slows) instead of dropping at the
   * destination. Never for broadcasts (one slow VM must not stall everyone), and bounded by
   * HOLD_MS so a peer that stopped reading costs the sender at most that long per burst.
   */
  private backpressure(src: PortState, dst: PortState): void {
    if (dst.io?.congested && !src.waitingFor.has(dst.id)) this.hold(src, dst, dst.io);
  }

  /**
   * Holds `src` until `dst` drains or HOLD_MS pass. Apart from backpressure(), which runs for
   * every unicast frame: a function whose variables a closure captures allocates their context
   * on every call, even when it returns before making the closure.
   */
  private hold(src: PortState, dst: PortState, io: PortIo): void {
    src.waitingFor.add(dst.id);
    src.hold();
    let done = false;
    const release = (): void => { if (done) return; done = true; clearTimeout(t); src.waitingFor.delete(dst.id); src.release(); };
    const t = setTimeout(release, HOLD_MS);
    t.unref();
    io.whenDrained(release);
  }

  /**
   * VLAN/PVLAN membership, virtual subnets (bridged only within one; an uplink is in none, so a
   * subnet's frames reach it only encapsulated, by the virtualization extension) and split
   * horizon (an uplink never feeds another uplink).
   */
  private admits(src: PortState, dst: PortState, vlan: number): boolean {
    if (src.kind === 'uplink' && dst.kind === 'uplink') return false;
    if (src.vsid !== dst.vsid) return false;
    return dst.vlan.accepts(src.vlan, vlan);
  }

  /** `info`: the parsed `frame` when it is not the one in this.info (a frame an extension built). */
  private egress(src: PortState, dst: PortState, frame: Uint8Array, framed: boolean, vlan: number, ctx: ExtensionFrame | null, now: number, info: FrameInfo = this.info): boolean {
    for (const s of this.egressExts) {
      const verdict = s.ext.egress!(ctx!, dst.id);
      if (s.type !== 'filter') continue;
      if (verdict === false) { this.drop(dst, 'extension'); return false; }
      if (verdict instanceof Uint8Array) { frame = verdict; framed = false; if (dst.policed) { parseFrameInto(frame, this.builtInfo, 0x10000); info = this.builtInfo; } }
    }
    if (dst.policed) {
      // The inbound check sees the frame untagged, as its VM will.
      const denied = dst.acls.check(INBOUND, info, frame, now);
      if (denied) { this.aclDenied(dst, INBOUND, denied); return false; }
    }
    return this.emit(src, dst, frame, framed, dst.vlan.egressTag(vlan), info.pcp);
  }

  /** The end of egress: tagged (`tag` > 0) with priority `pcp`, then into the port's fair queue or out. */
  private emit(src: PortState, dst: PortState, frame: Uint8Array, framed: boolean, tag: number, pcp: number): boolean {
    const wire = tag > 0 ? pushVlan(frame, { vid: tag, pcp }) : frame;
    if (dst.fairQueue) {
      if (!dst.fairQueue.enqueue(src.id, wire)) { this.drop(dst, 'congestion'); return false; }
      return true;
    }
    return this.transmit(dst, wire, 0, wire.length, src.id, framed && wire === frame);
  }

  /**
   * The `length` bytes of `bytes` from `start` out of `dst` (PortIo.send). `source`: the port the
   * frame came from; unknown (undefined) once it has waited in a fair queue. `framed`: see PortIo.send.
   */
  private transmit(dst: PortState, bytes: Uint8Array, start: number, length: number, source?: string, framed = false): boolean {
    const r = dst.io ? dst.io.send(bytes, start, length, source, framed) : 'not-connected';
    if (r !== 'ok') { this.drop(dst, r === 'full' ? 'tx-queue-full' : 'port-not-connected'); return false; }
    const c = dst.counters;
    c.txFrames++;
    c.txBytes += length;
    dst.capture?.write(frameOf(bytes, start, length));
    return true;
  }
}
