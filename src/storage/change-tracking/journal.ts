// The change tracker's file: a JSON-lines journal. It opens with a snapshot (header, the disk
// identity, every consumer's bitmaps as runs) and grows by appended records (written over the
// zeros the file is grown with, see GROW), each batch durable before the writes it covers are
// acknowledged: the file is open O_DSYNC, so a record's write returns once it is on the disk
// (one system call and one thread-pool trip per batch, where write + fdatasync took two).
// Replay stops at the first line that does not parse: only a batch whose write never returned
// (so no write it covers was acknowledged) can be torn. The file is rewritten whole (temp file, fsync, rename,
// directory fsync) at open and when the appended part grows, so a torn tail never gets records
// after it. Records:
//   {"h":{"v":1,"blockSize":65536,"blocks":N}}       header, always first
//   {"g":["guid",...]}                                   the disk is one of these DataWriteGuids ([]: unknown)
//   {"s":{"name":..,"full":..,"dirty":[[f,c],..],"taken":[[f,c],..]|null,"takenFull":..}}  a consumer, snapshot
//   {"m":[[f,c],..]}  blocks written: dirty in every consumer
//   {"c":"name"} added (full)   {"x":"name"} removed   {"t":"name"} take   {"k":"name"} commit   {"r":"name"} restore
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readFile, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { VmhostError } from '../../common/errors.ts';
import { Bitmap, type Run } from './bitmap.ts';

export interface ConsumerState {
  /** Everything counts as changed (new consumer, disk changed outside, resize). */
  full: boolean;
  dirty: Bitmap;
  /** What the last take handed out, until commit or restore. */
  taken: Bitmap | undefined;
  takenFull: boolean;
}

export interface TrackerState {
  blockSize: number;
  blocks: number;
  guids: string[];
  consumers: Map<string, ConsumerState>;
}

export type JournalRecord =
  | { m: Run[] } | { g: string[] } | { c: string } | { x: string } | { t: string } | { k: string } | { r: string };

interface SnapshotRecord { name: string; full: boolean; dirty: Run[]; taken: Run[] | null; takenFull: boolean }

export function newConsumer(blocks: number): ConsumerState {
  return { full: true, dirty: new Bitmap(blocks), taken: undefined, takenFull: false };
}

/** Apply one record to the state (replay, and the tracker after a record is durable). */
export function applyRecord(s: TrackerState, r: JournalRecord): void {
  if ('m' in r) {
    for (const c of s.consumers.values()) c.dirty.setRuns(r.m);
  } else if ('g' in r) {
    s.guids = r.g;
  } else if ('c' in r) {
    s.consumers.set(r.c, newConsumer(s.blocks));
  } else if ('x' in r) {
    s.consumers.delete(r.x);
  } else if ('t' in r) {
    const c = s.consumers.get(r.t);
    if (!c) return;
    c.taken = c.dirty;
    c.takenFull = c.full;
    c.dirty = new Bitmap(s.blocks);
    c.full = false;
  } else if ('k' in r) {
    const c = s.consumers.get(r.k);
    if (c) { c.taken = undefined; c.takenFull = false; }
  } else {
    const c = s.consumers.get(r.r);
    if (c) restoreTaken(c);
  }
}

/** Put an uncommitted take back into the consumer's dirty set (nothing handed out is lost). */
export function restoreTaken(c: ConsumerState): void {
  if (c.taken) c.dirty.or(c.taken);
  c.full ||= c.takenFull;
  c.taken = undefined;
  c.takenFull = false;
}

function journalError(path: string, what: string, e: unknown): VmhostError {
  const errno = (e as { code?: unknown } | null)?.code;
  return new VmhostError('STORAGE_TRACKING_FAILED', `change tracking file ${path}: ${what}: ${e instanceof Error ? e.message : String(e)}`,
    { op: 'change-tracking', path, errno: typeof errno === 'string' ? errno : undefined }, { cause: e });
}

/**
 * The file is grown in zero-filled steps of this size and records overwrite the zeros: a
 * record's synchronous write then changes no metadata (no size change, no extent conversion), so it is
 * one data write and a cache flush, not a file-system journal commit — under a guest's
 * buffered writes to the same file system that is the difference between ~0.1 ms and ~5 ms.
 * Replay stops at the zeros (they do not parse).
 */
const GROW = 1 << 20;

export class Journal {
  private constructor(readonly path: string, private fh: FileHandle, private appended: number, private pos: number, private capacity: number) {}

  /**
   * Read the file at `path` if there is one: the state it holds (undefined when absent), with
   * every uncommitted take restored. A file of another block size or disk size is refused.
   */
  static async read(path: string, blockSize: number, blocks: number): Promise<TrackerState | undefined> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw journalError(path, 'cannot read it', e);
    }
    const lines = text.split('\n');
    const head = parse(lines[0]!) as { h?: { v: number; blockSize: number; blocks: number } } | undefined;
    if (!head?.h || head.h.v !== 1) throw new VmhostError('STORAGE_TRACKING_FAILED', `${path} is not a change tracking file (version 1)`, { op: 'change-tracking', path });
    const state: TrackerState = { blockSize: head.h.blockSize, blocks: head.h.blocks, guids: [], consumers: new Map() };
    for (const line of lines.slice(1)) {
      const r = parse(line);
      if (r === undefined) break;
      if ('s' in r) {
        const s = (r as { s: SnapshotRecord }).s;
        const c = newConsumer(state.blocks);
        c.full = s.full;
        c.dirty.setRuns(s.dirty);
        if (s.taken) { c.taken = new Bitmap(state.blocks); c.taken.setRuns(s.taken); c.takenFull = s.takenFull; }
        state.consumers.set(s.name, c);
      } else {
        applyRecord(state, r as JournalRecord);
      }
    }
    for (const c of state.consumers.values()) restoreTaken(c);
    if (state.blockSize !== blockSize || state.blocks !== blocks) {
      // Another granularity or a resized disk: keep the consumers, each needing a full copy.
      const resized: TrackerState = { blockSize, blocks, guids: state.guids, consumers: new Map() };
      for (const name of state.consumers.keys()) resized.consumers.set(name, newConsumer(blocks));
      return resized;
    }
    return state;
  }

  /** Write `state` as a new file (atomically) and open it for appending. */
  static async create(path: string, state: TrackerState): Promise<Journal> {
    const text = snapshot(state);
    const tmp = join(dirname(path), `.${basename(path)}.tmp-${randomBytes(6).toString('hex')}`);
    try {
      const bytes = Buffer.from(text);
      const capacity = Math.ceil((bytes.length + GROW / 2) / GROW) * GROW;
      const fh = await open(tmp, 'wx', 0o600);
      try {
        const padded = Buffer.alloc(capacity);
        bytes.copy(padded);
        await fh.writeFile(padded);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
      const dir = await open(dirname(path), 'r');
      try { await dir.sync(); } finally { await dir.close(); }
      return new Journal(path, await open(path, constants.O_RDWR | constants.O_DSYNC), 0, bytes.length, capacity);
    } catch (e) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw journalError(path, 'cannot write it', e);
    }
  }

  /** Bytes appended since the snapshot (the tracker rewrites past a bound). */
  get appendedBytes(): number {
    return this.appended;
  }

  /** Append records; durable when this resolves (O_DSYNC: the size a growth changes too). */
  async append(records: readonly JournalRecord[]): Promise<void> {
    const bytes = Buffer.from(records.map((r) => JSON.stringify(r) + '\n').join(''));
    try {
      if (this.pos + bytes.length > this.capacity) {
        // Rare (once per MiB of records): zeros first, durable with the new size.
        const grow = Math.ceil((this.pos + bytes.length - this.capacity) / GROW) * GROW;
        await this.fh.write(Buffer.alloc(grow), 0, grow, this.capacity);
        this.capacity += grow;
      }
      await this.fh.write(bytes, 0, bytes.length, this.pos);
    } catch (e) {
      throw journalError(this.path, 'cannot append to it', e);
    }
    this.pos += bytes.length;
    this.appended += bytes.length;
  }

  /** Replace the file by a snapshot of `state`; this journal then appends to the new file. */
  async rewrite(state: TrackerState): Promise<void> {
    const next = await Journal.create(this.path, state);
    await this.fh.close().catch(() => undefined);
    this.fh = next.fh;
    this.appended = 0;
    this.pos = next.pos;
    this.capacity = next.capacity;
  }

  /**
   * Give up on the file: removed, so the next open starts without consumers and each of them
   * copies in full. Throws when even that fails (the caller must then refuse writes).
   */
  async discard(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    try {
      await unlink(this.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw journalError(this.path, 'cannot remove it after a failure', e);
    }
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

function parse(line: string): Record<string, unknown> | undefined {
  if (line === '' || line.charCodeAt(0) === 0) return undefined;
  try {
    const v = JSON.parse(line) as unknown;
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function snapshot(s: TrackerState): string {
  const lines = [JSON.stringify({ h: { v: 1, blockSize: s.blockSize, blocks: s.blocks } }), JSON.stringify({ g: s.guids })];
  for (const [name, c] of s.consumers) {
    const rec: SnapshotRecord = { name, full: c.full, dirty: c.full ? [] : c.dirty.runs(), taken: c.taken ? c.taken.runs() : null, takenFull: c.takenFull };
    lines.push(JSON.stringify({ s: rec }));
  }
  return lines.join('\n') + '\n';
}
