// The switches' events in the host's event log: ACL denies and guard drops (rate-limited: they
// are counted per frame, logged at most once per port and reason a minute) and captures that
// stopped by themselves. Called on the frame path: cheap unless an event is due.
import type { SwitchEvent } from '../switch/index.ts';
import type { NetHost } from './net-host.ts';
import type { VmEntry } from './vm-entry.ts';

const DROP_EVENT_INTERVAL_MS = 60_000;

export class SwitchEventLog {
  private readonly lastDropEvent = new Map<string, number>();

  constructor(private readonly host: NetHost) {}

  handle(ev: SwitchEvent): void {
    if (ev.type === 'port-connection') return; // QEMU connects/disconnects with every start and stop: VM_STARTED/VM_STOPPED say it
    if (ev.type === 'capture-stopped') { this.captureStopped(ev); return; }
    const reason = ev.type === 'acl-deny' ? `acl-deny-${ev.direction}` : ev.reason;
    const key = `${ev.switch}/${ev.port}/${reason}`;
    const now = Date.now();
    if (now - (this.lastDropEvent.get(key) ?? 0) < DROP_EVENT_INTERVAL_MS) return;
    this.lastDropEvent.set(key, now);
    const { owner, adapter } = this.ownerOf(ev.port);
    const what = ev.type === 'acl-deny'
      ? `${ev.direction} traffic denied by an ACL (${JSON.stringify(ev.rule)})`
      : `frames dropped by a guard (${ev.reason})`;
    this.host.event('Warning', ev.type === 'acl-deny' ? 'SWITCH_ACL_DENY' : 'SWITCH_GUARD_DROP',
      `Switch '${ev.switch}', adapter ${adapter ?? ev.port}: ${what}; further drops for this reason are counted (Get-VMSwitch -Json) and logged at most once a minute`, owner);
  }

  /** A capture that stopped by itself (cap reached, write error): an event, and the next Start-VMSwitchCapture may begin. */
  private captureStopped(ev: Extract<SwitchEvent, { type: 'capture-stopped' }>): void {
    const { owner, adapter } = ev.port === null ? {} : this.ownerOf(ev.port);
    const what = ev.port === null ? `switch '${ev.switch}'` : `adapter ${adapter ?? ev.port} on switch '${ev.switch}'`;
    const { stop } = ev;
    if (stop.reason === 'max-bytes') {
      this.host.event('Warning', 'SWITCH_CAPTURE_LIMIT',
        `Packet capture of ${what} stopped at its size limit: ${stop.frames} frames, ${stop.bytes} bytes in ${stop.path}`, owner);
    } else {
      this.host.event('Error', 'SWITCH_CAPTURE_FAILED',
        `Packet capture of ${what} stopped: writing ${stop.path} failed (${stop.error ?? 'unknown error'}); ${stop.frames} frames, ${stop.bytes} bytes were written`, owner);
    }
  }

  /** The VM and adapter name of a port (a host vNIC's port has neither). */
  private ownerOf(port: string): { owner?: VmEntry; adapter?: string } {
    const owner = [...this.host.entries()].find((e) => e.config.networkAdapters.some((a) => a.id === port));
    return { owner, adapter: owner?.config.networkAdapters.find((a) => a.id === port)?.name };
  }
}
