// The host's event log: what happened to which VM and why. Appended to events.jsonl in the
// data dir (kept across restarts), held in a bounded ring for queries, pushed to listeners
// (the API's event stream, the web console).
import { appendFile, readFile } from 'node:fs/promises';
import { EventEmitter } from 'node:events';

export type EventLevel = 'Information' | 'Warning' | 'Error';

export interface HostEvent {
  Seq: number;
  Time: string;
  Level: EventLevel;
  Code: string;
  Message: string;
  VMId?: string;
  VMName?: string;
  JobId?: string;
}

const RING = 5000;

export class EventLog {
  private readonly ring: HostEvent[] = [];
  private seq = 0;
  private readonly emitter = new EventEmitter();
  private writing: Promise<void> = Promise.resolve();

  private constructor(private readonly path: string) {
    this.emitter.setMaxListeners(0);
  }

  static async open(path: string): Promise<EventLog> {
    const log = new EventLog(path);
    const text = await readFile(path, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(-RING - 1)) {
      if (!line) continue;
      try {
        const e = JSON.parse(line) as HostEvent;
        log.ring.push(e);
        log.seq = Math.max(log.seq, e.Seq);
      } catch { /* a torn last line after a crash: skip it, the rest is intact */ }
    }
    return log;
  }

  emit(e: Omit<HostEvent, 'Seq' | 'Time'>): HostEvent {
    const ev: HostEvent = { Seq: ++this.seq, Time: new Date().toISOString(), ...e };
    this.ring.push(ev);
    if (this.ring.length > RING) this.ring.shift();
    this.writing = this.writing.then(() => appendFile(this.path, JSON.stringify(ev) + '\n')).catch(() => undefined);
    this.emitter.emit('event', ev);
    return ev;
  }

  list(filter: { since?: number; vmId?: string; limit?: number } = {}): HostEvent[] {
    let out = this.ring.filter((e) => (filter.since === undefined || e.Seq > filter.since) && (!filter.vmId || e.VMId === filter.vmId));
    if (filter.limit !== undefined) out = out.slice(-filter.limit);
    return out;
  }

  subscribe(fn: (e: HostEvent) => void): () => void {
    this.emitter.on('event', fn);
    return () => this.emitter.off('event', fn);
  }

  /** Wait until everything emitted so far is on disk (tests, shutdown). */
  async settled(): Promise<void> {
    await this.writing;
  }
}
