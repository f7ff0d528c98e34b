// Built-in forwarding extension "vmhost.learned-only": forwards like the default switch but
// floods nothing it has not learned. A unicast frame goes only to the port its MAC was learned
// on (unknown unicast is dropped, not flooded); a broadcast/multicast goes only to ports that
// are known: a port with a configured MAC, or one the extension has seen send. A port that
// has never spoken and has no configured MAC gets nothing. Learning is its own (per learning
// domain, no ageing beyond port removal), so it does not depend on the default table.
// Depends on extension, packet.
import { isMulticastMac, macToNumber, parseMac } from '../packet/index.ts';
import type { ExtensionDefinition, ExtensionFrame, ExtensionHost, PortChange, SwitchExtension } from './extension.ts';

class LearnedOnly implements SwitchExtension {
  private readonly table = new Map<number, Map<number, string>>();
  /** Configured MACs (any domain). */
  private readonly preset = new Map<number, string>();
  private readonly known = new Set<string>();
  private dropped = 0;

  constructor(host: ExtensionHost) {
    for (const id of host.portIds()) {
      const mac = host.portPolicy(id)?.mac;
      if (mac) { this.known.add(id); this.preset.set(macToNumber(parseMac(mac)), id); }
    }
  }

  forward(f: ExtensionFrame, candidates: readonly string[]): readonly string[] {
    let t = this.table.get(f.domain);
    if (!t) { t = new Map(); this.table.set(f.domain, t); }
    if (!isMulticastMac(f.info.src)) t.set(f.info.src, f.sourcePort);
    this.known.add(f.sourcePort);
    if (isMulticastMac(f.info.dst)) return candidates.filter((p) => this.known.has(p));
    const p = t.get(f.info.dst) ?? this.preset.get(f.info.dst);
    if (p !== undefined && candidates.includes(p)) return [p];
    this.dropped++;
    return [];
  }

  portChanged(c: PortChange): void {
    for (const [m, p] of this.preset) if (p === c.portId) this.preset.delete(m);
    if (c.op === 'remove') {
      this.known.delete(c.portId);
      for (const t of this.table.values()) for (const [m, p] of t) if (p === c.portId) t.delete(m);
      return;
    }
    if (c.policy.mac) { this.known.add(c.portId); this.preset.set(macToNumber(parseMac(c.policy.mac)), c.portId); }
  }

  status(): Record<string, unknown> {
    let n = 0;
    for (const t of this.table.values()) n += t.size;
    return { learned: n, knownPorts: [...this.known], unknownUnicastDropped: this.dropped };
  }
}

export const learnedOnlyForwardingExtension: ExtensionDefinition = {
  name: 'vmhost.learned-only',
  type: 'forwarding',
  description: 'forwarding that floods nothing it has not learned: no unknown-unicast flooding, broadcasts only to known ports',
  create: (host) => new LearnedOnly(host),
};
