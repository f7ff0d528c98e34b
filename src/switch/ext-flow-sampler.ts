// Built-in capture extension "vmhost.flow-sampler": an sFlow-style monitor. Counters per port
// (frames, bytes seen on ingress) and 1-in-N packet sampling: each sampled frame's header
// fields go into a ring of recent samples, and flows (src/dst IP, protocol, ports) are
// estimated as samples × N. Config: { sampleRate: N (default 64), maxSamples (default 256),
// random: true = sFlow's random skip, false = exactly every Nth frame }.
// Depends on extension, packet.
import { formatIpv4, formatMacNumber, formatIpv6 } from '../packet/index.ts';
import type { ExtensionDefinition, ExtensionFrame, SwitchExtension } from './extension.ts';

export interface FlowSample {
  readonly port: string;
  readonly time: number;
  readonly length: number;
  readonly vlan: number;
  readonly srcMac: string;
  readonly dstMac: string;
  readonly ethertype: number;
  readonly srcIp: string | null;
  readonly dstIp: string | null;
  readonly protocol: number;
  readonly srcPort: number;
  readonly dstPort: number;
}

class FlowSampler implements SwitchExtension {
  private rate = 64;
  private maxSamples = 256;
  private random = false;
  private skip = 0;
  private samplePool = 0;
  private readonly samples: FlowSample[] = [];
  private readonly counters = new Map<string, { frames: number; bytes: number; samples: number }>();
  private readonly flows = new Map<string, number>();

  constructor(private readonly now: () => number, config: Record<string, unknown>) { this.configure(config); }

  configure(c: Record<string, unknown>): void {
    if (typeof c.sampleRate === 'number' && c.sampleRate >= 1) this.rate = Math.floor(c.sampleRate);
    if (typeof c.maxSamples === 'number' && c.maxSamples >= 1) this.maxSamples = Math.floor(c.maxSamples);
    if (typeof c.random === 'boolean') this.random = c.random;
    this.skip = this.nextSkip();
  }

  private nextSkip(): number { return this.random ? 1 + Math.floor(Math.random() * (2 * this.rate - 1)) : this.rate; }

  ingress(f: ExtensionFrame): void {
    let c = this.counters.get(f.sourcePort);
    if (!c) { c = { frames: 0, bytes: 0, samples: 0 }; this.counters.set(f.sourcePort, c); }
    c.frames++;
    c.bytes += f.frame.length;
    this.samplePool++;
    if (--this.skip > 0) return;
    this.skip = this.nextSkip();
    c.samples++;
    const i = f.info;
    const ip = (off: number, v4: number): string | null => (i.ipVersion === 4 ? formatIpv4(v4) : i.ipVersion === 6 ? formatIpv6(f.frame, off) : null);
    const s: FlowSample = {
      port: f.sourcePort, time: this.now(), length: f.frame.length, vlan: f.vlan,
      srcMac: formatMacNumber(i.src), dstMac: formatMacNumber(i.dst), ethertype: i.ethertype,
      srcIp: ip(i.ipSrcOffset, i.ipSrc), dstIp: ip(i.ipDstOffset, i.ipDst), protocol: i.ipProtocol, srcPort: i.srcPort, dstPort: i.dstPort,
    };
    if (this.samples.length >= this.maxSamples) this.samples.shift();
    this.samples.push(s);
    if (s.srcIp) {
      const k = `${s.srcIp} ${s.dstIp} ${s.protocol} ${s.srcPort} ${s.dstPort}`;
      this.flows.set(k, (this.flows.get(k) ?? 0) + 1);
    }
  }

  status(): Record<string, unknown> {
    return {
      sampleRate: this.rate,
      samplePool: this.samplePool,
      ports: Object.fromEntries(this.counters),
      samples: [...this.samples],
      flows: [...this.flows].map(([k, n]) => ({ flow: k, samples: n, estimatedFrames: n * this.rate })).sort((a, b) => b.samples - a.samples),
    };
  }
}

export const flowSamplerExtension: ExtensionDefinition = {
  name: 'vmhost.flow-sampler',
  type: 'capture',
  description: 'sFlow-style monitor: per-port counters and 1-in-N frame sampling with flow estimates',
  create: (host, config) => new FlowSampler(host.now, config),
};
