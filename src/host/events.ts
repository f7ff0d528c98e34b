// The host's event log: what happened to which VM and why. Appended to events.jsonl in the
// data dir (kept across restarts), held in a bounded ring for queries, pushed to listeners
// (the API's event stream, the web console).
//
// Bounded on disk and at start: events.jsonl is rotated when it reaches `rotateBytes`
// (events.jsonl → .1 → .2 …, the oldest of `keepFiles` rotated files deleted), and opening
// reads only the last `loadTailBytes` of the newest files (never a whole file), which is
// enough for the ring and for the sequence number to continue.
import { appendFile, open, rename, rm, stat } from 'node:fs/promises';
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

export interface EventLogLimits {
  /** events.jsonl is rotated once it holds this many bytes. Default 16 MiB. */
  rotateBytes: number;
  /** Rotated files kept (events.jsonl.1 … .N). Default 3. */
  keepFiles: number;
  /** Bytes read from the end of the log at start. Default 4 MiB. */
  loadTailBytes: number;
}

export const DEFAULT_EVENT_LOG_LIMITS: EventLogLimits = { rotateBytes: 16 << 20, keepFiles: 3, loadTailBytes: 4 << 20 };

const RING = 5000;

export class EventLog {
  private readonly ring: HostEvent[] = [];
  private seq = 0;
  private readonly emitter = new EventEmitter();
  private writing: Promise<void> = Promise.resolve();
  /** Bytes in the current events.jsonl (as appended by us since start, plus what was there). */
  private size = 0;

  private constructor(private readonly path: string, private readonly limits: EventLogLimits) {
    this.emitter.setMaxListeners(0);
  }

  static async open(path: string, limits: Partial<EventLogLimits> = {}): Promise<EventLog> {
    const log = new EventLog(path, { ...DEFAULT_EVENT_LOG_LIMITS, ...limits });
    log.size = await stat(path).then((s) => s.size, () => 0);
    for (const line of (await log.readTail()).split('\n').slice(-RING - 1)) {
      if (!line) continue;
      try {
        const e = JSON.parse(line) as HostEvent;
        log.ring.push(e);
        log.seq = Math.max(log.seq, e.Seq);
      } catch { /* a torn line (after a crash, or where the tail was cut): skip it, the rest is intact */ }
    }
    return log;
  }

  emit(e: Omit<HostEvent, 'Seq' | 'Time'>): HostEvent {
    const ev: HostEvent = { Seq: ++this.seq, Time: new Date().toISOString(), ...e };
    this.ring.push(ev);
    if (this.ring.length > RING) this.ring.shift();
    const line = JSON.stringify(ev) + '\n';
    this.writing = this.writing.then(async () => {
      await appendFile(this.path, line);
      this.size += Buffer.byteLength(line);
      if (this.size >= this.limits.rotateBytes) await this.rotate();
    }).catch(() => undefined);
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

  private rotated(n: number): string { return `${this.path}.${n}`; }

  private async rotate(): Promise<void> {
    const keep = this.limits.keepFiles;
    if (keep === 0) await rm(this.path, { force: true });
    else {
      for (let n = keep - 1; n >= 1; n--) await rename(this.rotated(n), this.rotated(n + 1)).catch(ignoreMissing);
      await rename(this.path, this.rotated(1));
    }
    this.size = 0;
  }

  /** The last `loadTailBytes` of the log, newest file first, as text in file order. */
  private async readTail(): Promise<string> {
    const parts: string[] = [];
    let budget = this.limits.loadTailBytes;
    for (let n = 0; n <= this.limits.keepFiles && budget > 0; n++) {
      const part = await readFileTail(n === 0 ? this.path : this.rotated(n), budget);
      if (!part) continue;
      parts.unshift(part.bytes.toString('utf8'));
      budget -= part.bytes.length;
      // The file was read from its start: an older file may add more; otherwise the budget is spent.
      if (!part.whole) break;
    }
    // Joined by a newline: a file torn by a crash must not glue its last line to the next file's first.
    return parts.join('\n');
  }
}

/** Up to `max` bytes from the end of `path`, started at a line boundary; undefined if it does not exist. */
async function readFileTail(path: string, max: number): Promise<{ bytes: Buffer; whole: boolean } | undefined> {
  const fh = await open(path, 'r').catch(() => undefined);
  if (!fh) return undefined;
  try {
    const { size } = await fh.stat();
    const start = Math.max(0, size - max);
    const buf = Buffer.alloc(size - start);
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, start + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    const bytes = buf.subarray(0, got);
    if (start === 0) return { bytes, whole: true };
    // Cut inside a line: drop the partial first line.
    const nl = bytes.indexOf(0x0a);
    return { bytes: nl < 0 ? Buffer.alloc(0) : bytes.subarray(nl + 1), whole: false };
  } finally {
    await fh.close();
  }
}

function ignoreMissing(e: unknown): void {
  if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
}
