// The VHDX log (2.3): a circular journal of 4 KiB sectors in front of every metadata change.
// Writing: a transaction becomes one log entry (header + descriptors + data sectors), which
// is written, flushed, then applied to its real file offsets and flushed again. Each entry's
// Tail points at itself, so at most one (already applied or fully journaled) entry is ever
// needed for replay. When the log wraps we start afresh under a new LogGuid instead of
// overwriting the newest entry. Replay: find the active sequence among entries carrying the
// header's LogGuid, check it fully, and copy its sectors (and zero ranges) into place.
import { crc32c } from '@node-rs/crc32';
import type { BlockFile } from '../blockio/block-file.ts';
import {
  LOG_SECTOR, SIG_LOGE, SIG_DESC, SIG_ZERO, SIG_DATA, MAX_FILE_OFFSET, GiB, REGION1_OFFSET,
  ascii, checksum, corrupt, put32, put64, put64big, putAscii, u32, u64, u64big,
} from './format.ts';
import { readGuid, writeGuid, ZERO_GUID, newGuid } from './guid.ts';
import type { HeaderState } from './header.ts';
import type { SectorTx } from './tx.ts';
import { VmhostError } from '../common/errors.ts';

const ENTRY_HEADER = 64;
const DESC = 32;

interface Descriptor {
  zero: boolean;
  fileOffset: number;
  /** zero: range length; data: 4096 */
  length: number;
  /** data descriptors: the reassembled 4 KiB sector */
  data?: Uint8Array;
}

interface LogEntry {
  at: number;
  length: number;
  tail: number;
  seq: bigint;
  flushedFileOffset: number;
  lastFileOffset: number;
  descriptors: Descriptor[];
}

/**
 * The cheap half of validating the entry at log offset `at`: header fields, every
 * descriptor, every data sector's signature and sequence number — everything but the
 * checksum, without copying. Why it comes first: every sector of a well-formed entry but its
 * first starts with 'desc', 'zero' or 'data', so well-formed entries never overlap and the
 * checksums computed afterwards cover the log at most once (a crafted file used to make us
 * CRC up to 64 MiB for each of its sectors). The scan of a candidate stops at its first
 * bad sector, and no sector it passed starts another candidate, so all scans together read
 * about the log once too. Sectors never straddle the end of the log (both are multiples of
 * 4 KiB), and neither does a 32-byte descriptor, so every field read here is contiguous.
 */
function entryShape(log: Uint8Array, at: number, logGuid: string): { length: number; seq: bigint } | undefined {
  const L = log.length;
  if (ascii(log, at, 4) !== SIG_LOGE) return undefined;
  const entryLength = u32(log, at + 8);
  const tail = u32(log, at + 12);
  const seq = u64big(log, at + 16);
  const count = u32(log, at + 24);
  if (entryLength === 0 || entryLength % LOG_SECTOR !== 0 || entryLength > L) return undefined;
  if (tail % LOG_SECTOR !== 0 || tail >= L) return undefined;
  if (seq === 0n) return undefined;
  if (readGuid(log, at + 32) !== logGuid) return undefined;
  const headerArea = Math.ceil((ENTRY_HEADER + count * DESC) / LOG_SECTOR) * LOG_SECTOR;
  if (headerArea > entryLength) return undefined;
  let dataSector = headerArea;
  for (let i = 0; i < count; i++) {
    const o = (at + ENTRY_HEADER + i * DESC) % L;
    const sig = ascii(log, o, 4);
    if (sig === SIG_DESC) {
      if (dataSector + LOG_SECTOR > entryLength) return undefined;
      const ds = (at + dataSector) % L;
      if (ascii(log, ds, 4) !== SIG_DATA) return undefined;
      if ((BigInt(u32(log, ds + 4)) << 32n | BigInt(u32(log, ds + 4092))) !== seq) return undefined;
      dataSector += LOG_SECTOR;
    } else if (sig !== SIG_ZERO) return undefined;
    if (u64big(log, o + 24) !== seq) return undefined;
  }
  if (dataSector !== entryLength) return undefined;
  return { length: entryLength, seq };
}

/** CRC-32C of the (possibly wrapping) entry with its checksum field as zero, without copying the entry. */
function entryChecksum(log: Uint8Array, at: number, length: number): number {
  const saved = u32(log, at + 4);
  put32(log, at + 4, 0);
  try {
    const first = Math.min(length, log.length - at);
    const c = crc32c(log.subarray(at, at + first));
    return (first < length ? crc32c(log.subarray(0, length - first), c) : c) >>> 0;
  } finally {
    put32(log, at + 4, saved);
  }
}

/** Parse and fully validate the entry at log offset `at` (circular), or undefined. */
function parseEntry(log: Uint8Array, at: number, logGuid: string, budget: { crcBytes: number }): LogEntry | undefined {
  const shape = entryShape(log, at, logGuid);
  if (!shape) return undefined;
  // Cannot run out for well-formed entries (they do not overlap); a guard, not a limit.
  budget.crcBytes -= shape.length;
  if (budget.crcBytes < 0) return undefined;
  if (u32(log, at + 4) !== entryChecksum(log, at, shape.length)) return undefined;
  const L = log.length;
  const flushedFileOffset = u64(log, at + 48);
  const lastFileOffset = u64(log, at + 56);
  if (!(flushedFileOffset <= MAX_FILE_OFFSET) || !(lastFileOffset <= MAX_FILE_OFFSET)) return undefined;
  const count = u32(log, at + 24);
  const descriptors: Descriptor[] = [];
  let dataSector = Math.ceil((ENTRY_HEADER + count * DESC) / LOG_SECTOR) * LOG_SECTOR;
  for (let i = 0; i < count; i++) {
    const o = (at + ENTRY_HEADER + i * DESC) % L;
    const fileOffset = u64(log, o + 16);
    if (!(fileOffset <= MAX_FILE_OFFSET) || fileOffset % LOG_SECTOR !== 0) return undefined;
    if (ascii(log, o, 4) === SIG_ZERO) {
      const length = u64(log, o + 8);
      if (!(length <= MAX_FILE_OFFSET) || length % LOG_SECTOR !== 0) return undefined;
      descriptors.push({ zero: true, fileOffset, length });
    } else {
      const ds = (at + dataSector) % L;
      const data = new Uint8Array(LOG_SECTOR);
      data.set(log.subarray(o + 8, o + 16), 0); // LeadingBytes
      data.set(log.subarray(ds + 8, ds + 4092), 8);
      data.set(log.subarray(o + 4, o + 8), 4092); // TrailingBytes
      descriptors.push({ zero: false, fileOffset, length: LOG_SECTOR, data });
      dataSector += LOG_SECTOR;
    }
  }
  return { at, length: shape.length, tail: u32(log, at + 12), seq: shape.seq, flushedFileOffset, lastFileOffset, descriptors };
}

/**
 * The active sequence (2.3.3): among sequences of valid entries with consecutive sequence
 * numbers, each following the previous in the circular log, whose last entry's Tail points
 * at the sequence's first entry, the one ending in the highest sequence number.
 */
function activeSequence(log: Uint8Array, logGuid: string): LogEntry[] | undefined {
  const byOffset = new Map<number, LogEntry>();
  // Valid entries do not overlap, so together they are never longer than the log.
  const crcBudget = { crcBytes: log.length };
  for (let at = 0; at < log.length; at += LOG_SECTOR) {
    const e = parseEntry(log, at, logGuid, crcBudget);
    if (e) byOffset.set(at, e);
  }
  let best: LogEntry[] | undefined;
  let budget = 1_000_000;
  for (const last of byOffset.values()) {
    if (best && best[best.length - 1]!.seq >= last.seq) continue;
    const first = byOffset.get(last.tail);
    if (!first || first.seq > last.seq) continue;
    const seqs: LogEntry[] = [first];
    let cur = first;
    while (cur !== last && budget-- > 0) {
      const next = byOffset.get((cur.at + cur.length) % log.length);
      if (!next || next.seq !== cur.seq + 1n) break;
      seqs.push(next);
      cur = next;
    }
    if (cur === last) best = seqs;
  }
  return best;
}

export interface LogArea {
  offset: number;
  length: number;
}

async function readLog(file: BlockFile, area: LogArea): Promise<Uint8Array> {
  const b = new Uint8Array(area.length);
  await file.read(b, area.offset);
  return b;
}

/** A log's active sequence: the entries a replay applies, oldest first. */
export type ActiveSequence = readonly LogEntry[];

/**
 * The active sequence of the log the header names, or undefined when there is nothing to
 * replay. Opening calls this once and hands the result to replayLog, so the log is read and
 * checked once.
 */
export async function pendingLog(file: BlockFile, area: LogArea, logGuid: string): Promise<ActiveSequence | undefined> {
  if (logGuid === ZERO_GUID) return undefined;
  return activeSequence(await readLog(file, area), logGuid);
}

/** Replay an active sequence into the file (caller flushes and clears the LogGuid). Returns entries replayed. */
export async function replayLog(file: BlockFile, area: LogArea, seq: ActiveSequence): Promise<number> {
  const size = await file.size();
  const last = seq[seq.length - 1]!;
  const ctx = { structure: 'log', offset: area.offset + last.at, file: file.name };
  if (size < last.flushedFileOffset) throw corrupt(`file is shorter (${size}) than the log's flushed file offset ${last.flushedFileOffset}`, ctx);
  // Bound everything a replay could make us write or allocate.
  let zeroTotal = 0;
  for (const e of seq) {
    for (const d of e.descriptors) {
      const end = d.fileOffset + d.length;
      if (d.fileOffset < REGION1_OFFSET || (d.fileOffset < area.offset + area.length && end > area.offset)) {
        throw corrupt(`log descriptor targets a protected range at ${d.fileOffset}`, ctx);
      }
      if (d.zero) zeroTotal += d.length;
      if (end > Math.max(size, last.lastFileOffset) + GiB) throw corrupt(`log descriptor writes far past the end of file (${end})`, ctx);
    }
  }
  if (zeroTotal > 4 * GiB) throw corrupt('log zero descriptors cover too much', ctx);
  if (last.lastFileOffset > size + 64 * GiB) throw corrupt(`log last file offset ${last.lastFileOffset} implausible`, ctx);
  const zeros = new Uint8Array(1024 * 1024);
  for (const e of seq) {
    for (const d of e.descriptors) {
      if (d.data) await file.write(d.data, d.fileOffset);
      else {
        for (let o = 0; o < d.length; o += zeros.length) {
          await file.write(zeros.subarray(0, Math.min(zeros.length, d.length - o)), d.fileOffset + o);
        }
      }
    }
  }
  if ((await file.size()) < last.lastFileOffset) await file.truncate(last.lastFileOffset);
  return seq.length;
}

/** Build one log entry holding `sectors`. */
export function buildEntry(
  sectors: Array<[number, Uint8Array]>, seq: bigint, tail: number, logGuid: string, flushedFileOffset: number, lastFileOffset: number,
): Uint8Array {
  const n = sectors.length;
  const headerArea = Math.ceil((ENTRY_HEADER + n * DESC) / LOG_SECTOR) * LOG_SECTOR;
  const len = headerArea + n * LOG_SECTOR;
  const b = new Uint8Array(len);
  putAscii(b, 0, SIG_LOGE);
  put32(b, 8, len);
  put32(b, 12, tail);
  put64big(b, 16, seq);
  put32(b, 24, n);
  writeGuid(b, 32, logGuid);
  put64(b, 48, flushedFileOffset);
  put64(b, 56, lastFileOffset);
  const hi = Number(seq >> 32n), lo = Number(seq & 0xffffffffn);
  sectors.forEach(([fileOffset, data], i) => {
    const o = ENTRY_HEADER + i * DESC;
    putAscii(b, o, SIG_DESC);
    b.set(data.subarray(4092, 4096), o + 4);
    b.set(data.subarray(0, 8), o + 8);
    put64(b, o + 16, fileOffset);
    put64big(b, o + 24, seq);
    const ds = headerArea + i * LOG_SECTOR;
    putAscii(b, ds, SIG_DATA);
    put32(b, ds + 4, hi);
    b.set(data.subarray(8, 4092), ds + 8);
    put32(b, ds + 4092, lo);
  });
  put32(b, 4, checksum(b, 4));
  return b;
}

/** Sectors per entry we allow (header area + data must fit in the log). */
export function maxSectorsPerEntry(logLength: number): number {
  // n data sectors need n + ceil((64 + 32n)/4096) sectors.
  let n = Math.floor(logLength / LOG_SECTOR) - 1;
  while (n > 0 && (n + Math.ceil((ENTRY_HEADER + n * DESC) / LOG_SECTOR)) * LOG_SECTOR > logLength) n--;
  return n;
}

/**
 * Journals transactions for an open, writable file. `beforeFirstUse` runs the session's
 * first header update (FileWriteGuid etc.) together with installing a LogGuid.
 */
export class LogWriter {
  private head = 0;
  private seq = 1n;
  /**
   * `fresh`: the first entry must start a new log under a new LogGuid. False when the caller
   * has just installed a new LogGuid itself (so entries start at offset 0 under it).
   */
  constructor(
    private readonly file: BlockFile,
    private readonly area: LogArea,
    private readonly headers: HeaderState,
    private fresh = true,
  ) {}

  get maxSectors(): number {
    return maxSectorsPerEntry(this.area.length);
  }

  /** Write the entry, flush, apply, flush. The caller has already flushed any data the entry makes reachable. */
  async commit(tx: SectorTx): Promise<void> {
    if (tx.size === 0) return;
    const sectors = [...tx.sectors].sort((a, b) => a[0] - b[0]);
    if (sectors.length > this.maxSectors) {
      throw new VmhostError('VHDX_TOO_LARGE', `metadata transaction of ${sectors.length} sectors does not fit in the log`, { file: this.file.name });
    }
    const entryLen = (sectors.length + Math.ceil((ENTRY_HEADER + sectors.length * DESC) / LOG_SECTOR)) * LOG_SECTOR;
    if (this.fresh || this.headers.current.logGuid === ZERO_GUID || this.head + entryLen > this.area.length) {
      this.fresh = false;
      // Fresh log under a new LogGuid: older entries (all applied) become invisible.
      await this.headers.update(this.file, { logGuid: newGuid() });
      this.head = 0;
    }
    const size = await this.file.size();
    const entry = buildEntry(sectors, this.seq, this.head, this.headers.current.logGuid, size, size);
    await this.file.write(entry, this.area.offset + this.head);
    await this.file.flush();
    for (const [off, data] of sectors) await this.file.write(data, off);
    await this.file.flush();
    this.head += entryLen;
    this.seq += 1n;
  }

  /** Mark the log empty (on close): every entry has been applied and flushed. */
  async close(): Promise<void> {
    if (this.headers.current.logGuid !== ZERO_GUID) await this.headers.update(this.file, { logGuid: ZERO_GUID });
  }
}

export { ZERO_GUID };
