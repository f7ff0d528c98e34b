// An open VHDX file as a VirtualDisk: resolves guest reads/writes/trims through the BAT and
// sector bitmaps into file I/O, allocates blocks at the end of the file, and sends every
// metadata change through the log. Ordering for a write that allocates: payload data is
// written and flushed first, then the BAT/bitmap change is journaled, flushed, applied and
// flushed, so `write()` resolving means data and the metadata that reaches it are in the
// file; `flush()` is then only an fsync. Reads, block status and overwrites of fully present
// blocks run side by side; every other operation runs alone (a FIFO reader/writer lock).
// Reads that fall through go to `parent` (chain.ts opens it).
import type { BlockFile } from '../blockio/block-file.ts';
import { mapFileData } from '../blockio/file-map.ts';
import { copySlice, type FileSlice } from '../blockio/file-copy.ts';
import type { VirtualDisk, Extent, DiskType } from '../blockio/virtual-disk.ts';
import { VmhostError } from '../common/errors.ts';
import {
  MiB, roundUp, invalidArg, corrupt,
  PAYLOAD_NOT_PRESENT, PAYLOAD_UNDEFINED, PAYLOAD_ZERO, PAYLOAD_UNMAPPED, PAYLOAD_FULLY_PRESENT, PAYLOAD_PARTIALLY_PRESENT,
  SB_PRESENT, SECTOR_BITMAP_BLOCK,
} from './format.ts';
import { Bat, batGeometry, payloadIndex, sbIndex, type BatGeometry } from './bat.ts';
import { SectorBitmaps } from './sector-bitmap.ts';
import { SectorTx } from './tx.ts';
import { HeaderState } from './header.ts';
import { LogWriter, type LogArea } from './log.ts';
import type { RegionEntry } from './region.ts';
import type { DiskParams, MetadataItem } from './metadata.ts';
import { newGuid, normGuid } from './guid.ts';

export interface DiskState {
  file: BlockFile;
  readOnly: boolean;
  headers: HeaderState;
  logArea: LogArea;
  regions: RegionEntry[];
  batRegion: RegionEntry;
  metadataRegion: RegionEntry;
  metadataImage: Uint8Array;
  items: MetadataItem[];
  params: DiskParams;
  fileEnd: number;
  parent?: VirtualDisk;
  problems: string[];
}

/** Puts `len` bytes of a write request, from `at` within it, at file offset `to`. */
type Put = (at: number, len: number, to: number) => Promise<void>;

/** A span of one payload block touched by a request. */
interface Span {
  block: number;
  inBlock: number;
  len: number;
  /** offset of the span within the request buffer */
  at: number;
}

export class VhdxDisk implements VirtualDisk {
  readonly format = 'VHDX' as const;
  readonly file: BlockFile;
  readonly readOnly: boolean;
  headers: HeaderState;
  logArea: LogArea;
  regions: RegionEntry[];
  batRegion: RegionEntry;
  metadataRegion: RegionEntry;
  metadataImage: Uint8Array;
  items: MetadataItem[];
  params: DiskParams;
  g: BatGeometry;
  bat: Bat;
  bitmaps: SectorBitmaps;
  /** First byte past everything allocated; new blocks go here (1 MiB aligned). */
  fileEnd: number;
  parent: VirtualDisk | undefined;
  /** Problems noticed at open that did not stop it (e.g. one invalid header). */
  readonly openProblems: string[];
  private log: LogWriter | undefined;
  private session = { file: false, data: false };
  /** The DataWriteGuid the session's first data change installs (presetDataWriteGuid), else a random one. */
  private nextDataWriteGuid: string | undefined;
  private lock: Promise<unknown> = Promise.resolve();
  /** Shared requests started since the last exclusive one was queued (the next exclusive waits for them). */
  private readers = new Set<Promise<unknown>>();
  private closed = false;

  constructor(s: DiskState) {
    this.file = s.file;
    this.readOnly = s.readOnly;
    this.headers = s.headers;
    this.logArea = s.logArea;
    this.regions = s.regions;
    this.batRegion = s.batRegion;
    this.metadataRegion = s.metadataRegion;
    this.metadataImage = s.metadataImage;
    this.items = s.items;
    this.params = s.params;
    this.fileEnd = s.fileEnd;
    this.parent = s.parent;
    this.openProblems = s.problems;
    this.g = geometryOf(s.params);
    this.bat = new Bat(s.file, s.batRegion.fileOffset, s.batRegion.length, this.g);
    this.bitmaps = new SectorBitmaps(s.file, this.g);
  }

  get type(): DiskType {
    if (this.params.hasParent) return 'Differencing';
    return this.params.leaveBlocksAllocated ? 'Fixed' : 'Dynamic';
  }
  get virtualSize(): number {
    return this.params.virtualSize;
  }
  get logicalSectorSize(): number {
    return this.params.logicalSectorSize;
  }
  get physicalSectorSize(): number {
    return this.params.physicalSectorSize;
  }
  get blockSize(): number {
    return this.params.blockSize;
  }
  get dataWriteGuid(): string {
    return this.headers.current.dataWriteGuid;
  }

  /**
   * Run `fn` exclusively: after every request queued before it (shared ones included), and
   * before any queued after it.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const before = this.readers.size > 0 ? Promise.all([this.lock, ...this.readers]) : this.lock;
    const p = before.then(() => {
      if (this.closed) throw new VmhostError('VHDX_CLOSED', 'disk is closed', { file: this.file.name });
      return fn();
    });
    this.lock = p.catch(() => undefined);
    this.readers.clear();
    return p;
  }

  /**
   * Run `fn` alongside other shared requests (reads, block status, overwrites of fully present
   * blocks: they only fill caches, never change structures), after every exclusive request
   * queued before it.
   */
  shared<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.lock.then(() => {
      if (this.closed) throw new VmhostError('VHDX_CLOSED', 'disk is closed', { file: this.file.name });
      return fn();
    });
    const done = p.catch(() => undefined);
    this.readers.add(done);
    void done.then(() => this.readers.delete(done));
    return p;
  }

  private checkRange(op: string, offset: number, length: number): void {
    const ls = this.params.logicalSectorSize;
    const ctx = { op, offset, length, file: this.file.name };
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) throw invalidArg('bad offset or length', ctx);
    if (offset % ls !== 0 || length % ls !== 0) throw invalidArg(`${op} not aligned to the ${ls}-byte logical sector`, ctx);
    if (offset + length > this.params.virtualSize) throw invalidArg(`${op} past the end of the disk (${this.params.virtualSize})`, ctx);
  }

  private spans(offset: number, length: number): Span[] {
    const out: Span[] = [];
    const bs = this.params.blockSize;
    let at = 0;
    while (at < length) {
      const pos = offset + at;
      const block = Math.floor(pos / bs);
      const inBlock = pos - block * bs;
      const len = Math.min(bs - inBlock, length - at);
      out.push({ block, inBlock, len, at });
      at += len;
    }
    return out;
  }

  async read(buf: Uint8Array, offset: number): Promise<void> {
    this.checkRange('read', offset, buf.length);
    return this.shared(() => this.readUnlocked(buf, offset));
  }

  /**
   * Unallocated, zero and unmapped blocks (of a disk without a parent) answer 'zero' unread.
   * When the cached BAT already says so, the answer skips the lock: a write or trim updates
   * the cache before it resolves, so a read sent after its reply still sees it, and a read
   * racing one may return either state, as NBD allows.
   */
  async readSparse(offset: number, length: number, buffer: () => Uint8Array): Promise<'zero' | 'data'> {
    this.checkRange('read', offset, length);
    if (this.readsZeroNow(offset, length)) return 'zero';
    return this.shared(async () => {
      if (!this.params.hasParent && (await this.allZeroBlocks(offset, length))) return 'zero';
      await this.readUnlocked(buffer(), offset);
      return 'data';
    });
  }

  /** The cached BAT's answer of `readSparse`, synchronously: false when it would need the lock or I/O. */
  readsZeroNow(offset: number, length: number): boolean {
    const ls = this.params.logicalSectorSize;
    const valid = Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length > 0 &&
      offset % ls === 0 && length % ls === 0 && offset + length <= this.params.virtualSize;
    return valid && !this.closed && !this.params.hasParent && this.cachedZeroBlocks(offset, length);
  }

  private cachedZeroBlocks(offset: number, length: number): boolean {
    const bs = this.params.blockSize;
    for (let b = Math.floor(offset / bs); b * bs < offset + length; b++) {
      const st = this.bat.cachedPayload(b)?.state;
      if (st !== PAYLOAD_NOT_PRESENT && st !== PAYLOAD_UNDEFINED && st !== PAYLOAD_ZERO && st !== PAYLOAD_UNMAPPED) return false;
    }
    return true;
  }

  private async allZeroBlocks(offset: number, length: number): Promise<boolean> {
    for (const s of this.spans(offset, length)) {
      const st = (await this.bat.payload(s.block)).state;
      if (st === PAYLOAD_FULLY_PRESENT || st === PAYLOAD_PARTIALLY_PRESENT) return false;
    }
    return true;
  }

  async readUnlocked(buf: Uint8Array, offset: number): Promise<void> {
    const ls = this.params.logicalSectorSize;
    for (const s of this.spans(offset, buf.length)) {
      const sub = buf.subarray(s.at, s.at + s.len);
      const e = await this.bat.payload(s.block);
      switch (e.state) {
        case PAYLOAD_FULLY_PRESENT:
          await this.file.read(sub, e.offset + s.inBlock);
          break;
        case PAYLOAD_PARTIALLY_PRESENT: {
          const sb = await this.bitmapOffset(s.block);
          const runs = await this.bitmaps.runs(sb, s.block, s.inBlock / ls, s.len / ls);
          let o = 0;
          for (const [present, n] of runs) {
            const part = sub.subarray(o, o + n * ls);
            if (present) await this.file.read(part, e.offset + s.inBlock + o);
            else await this.readParent(part, offset + s.at + o);
            o += n * ls;
          }
          break;
        }
        case PAYLOAD_NOT_PRESENT:
        case PAYLOAD_UNDEFINED:
          if (this.params.hasParent) await this.readParent(sub, offset + s.at);
          else sub.fill(0);
          break;
        default:
          sub.fill(0);
      }
    }
  }

  /**
   * Whether block `block` reads as zeros (Optimize-VHD -Mode Full). Under a fully present
   * block, holes in the file are zeros known without reading (blockio/file-map.ts): only its
   * data runs are read into `scratch` (at least a block long) and compared.
   */
  async blockReadsZero(block: number, scratch: Uint8Array): Promise<boolean> {
    return this.shared(async () => {
      const bs = this.params.blockSize;
      const len = Math.min(bs, this.params.virtualSize - block * bs);
      const e = await this.bat.payload(block);
      const present = e.state === PAYLOAD_FULLY_PRESENT;
      const runs = present ? (await mapFileData(this.file, e.offset, len)).filter((x) => x.data) : [{ offset: e.offset, length: len }];
      for (const r of runs) {
        const sub = scratch.subarray(0, r.length);
        if (present) await this.file.read(sub, r.offset);
        else await this.readUnlocked(sub, block * bs);
        if (!allZero(sub)) return false;
      }
      return true;
    });
  }

  private async readParent(buf: Uint8Array, offset: number): Promise<void> {
    const p = this.parent;
    if (!p) {
      if (this.params.hasParent) throw new VmhostError('VHDX_PARENT_REQUIRED', 'differencing disk opened without its parent', { file: this.file.name });
      buf.fill(0);
      return;
    }
    const inside = Math.max(0, Math.min(buf.length, p.virtualSize - offset));
    if (inside > 0) {
      const sub = buf.subarray(0, inside);
      if (p instanceof VhdxDisk) await p.readUnlocked(sub, offset);
      else await p.read(sub, offset);
    }
    buf.fill(0, inside);
  }

  private async bitmapOffset(block: number, tx?: SectorTx): Promise<number> {
    const chunk = Math.floor(block / this.g.chunkRatio);
    const sb = await this.bat.sectorBitmap(chunk, tx);
    if (sb.state !== SB_PRESENT) {
      throw corrupt(`block ${block} is partially present but its sector bitmap block is not`, { structure: 'BAT', file: this.file.name, block });
    }
    return sb.offset;
  }

  /**
   * Fix the DataWriteGuid this session's first data change will install, before it happens: a
   * live merge writes into a parent that children link to, and first records the new GUID as
   * their parent_linkage2, so each child links whether or not the parent was written when a
   * crash came (MS-VHDX 2.6.2.6.3: parent_linkage2 exists for exactly this).
   */
  presetDataWriteGuid(guid: string): void {
    if (this.session.data) throw new VmhostError('VHDX_INVALID_ARGUMENT', 'the DataWriteGuid of this session is already installed', { file: this.file.name });
    this.nextDataWriteGuid = normGuid(guid);
  }

  /** First modification of the session: new FileWriteGuid (and DataWriteGuid when user data changes). */
  async beginWrite(dataChange: boolean): Promise<void> {
    if (this.readOnly) throw new VmhostError('VHDX_READ_ONLY', 'disk is open read-only', { file: this.file.name });
    const change: { fileWriteGuid?: string; dataWriteGuid?: string } = {};
    if (!this.session.file) change.fileWriteGuid = newGuid();
    if (dataChange && !this.session.data) change.dataWriteGuid = this.nextDataWriteGuid ?? newGuid();
    if (change.fileWriteGuid || change.dataWriteGuid) {
      // The session's first header update also installs a fresh LogGuid for the log writer.
      const installLog = !this.log;
      await this.headers.update(this.file, installLog ? { ...change, logGuid: newGuid() } : change);
      if (installLog) this.log = new LogWriter(this.file, this.logArea, this.headers, false);
      this.session.file = true;
      if (change.dataWriteGuid) this.session.data = true;
    }
    if (!this.log) this.log = new LogWriter(this.file, this.logArea, this.headers, true);
  }

  /** Reserve `size` bytes at the end of the file; the range reads as zeros. */
  async allocate(size: number): Promise<number> {
    const off = this.fileEnd;
    this.fileEnd = roundUp(off + size, MiB);
    if ((await this.file.size()) < this.fileEnd) await this.file.truncate(this.fileEnd);
    return off;
  }

  /** Journal and apply `tx`, then refresh caches. Data it makes reachable must already be flushed. */
  async commit(tx: SectorTx): Promise<void> {
    if (tx.size === 0) return;
    await this.beginWrite(false);
    await this.log!.commit(tx);
    this.bat.install(tx);
    const m = this.metadataRegion;
    for (const [off, img] of tx.sectors) {
      if (off >= m.fileOffset && off < m.fileOffset + m.length) this.metadataImage.set(img, off - m.fileOffset);
    }
    this.bitmaps.install(tx, (off) => (off >= this.bat.offset && off < this.bat.offset + this.bat.length) || (off >= m.fileOffset && off < m.fileOffset + m.length) || off < MiB);
  }

  /** Flush data, then commit, when the transaction is non-empty. */
  private async flushAndCommit(tx: SectorTx): Promise<void> {
    if (tx.size === 0) return;
    await this.file.flush();
    await this.commit(tx);
  }

  private get txLimit(): number {
    return Math.max(1, Math.floor(this.logArea.length / 4096 / 2) - 8);
  }

  async write(buf: Uint8Array, offset: number): Promise<void> {
    return this.writeWith(buf.length, offset, (at, len, to) => this.file.write(buf.subarray(at, at + len), to));
  }

  /** `write` of bytes taken from another file, copied file to file (in the kernel when both can). */
  async writeFrom(src: FileSlice, length: number, offset: number): Promise<void> {
    return this.writeWith(length, offset, (at, len, to) => copySlice({ file: src.file, offset: src.offset + at }, len, this.file, to));
  }

  private async writeWith(length: number, offset: number, put: Put): Promise<void> {
    this.checkRange('write', offset, length);
    // Overwriting blocks that are already fully present changes no metadata: such writes run
    // side by side like reads. Judged from the cached BAT when queued (so a write that must
    // allocate keeps its place in the queue) and checked again when it runs.
    if (length > 0 && this.session.data && this.allPresentCached(offset, length)) {
      const done = await this.shared(() => this.overwriteUnlocked(length, offset, put));
      if (done) return;
    }
    return this.exclusive(() => this.putUnlocked(length, offset, put));
  }

  /**
   * Where a read of [offset, offset+length) would be served from, when that is one piece of
   * one file: a fully present block here, or the parent's answer for a block not present here.
   */
  async locate(offset: number, length: number): Promise<FileSlice | undefined> {
    this.checkRange('read', offset, length);
    const spans = this.spans(offset, length);
    if (spans.length !== 1) return undefined;
    const s = spans[0]!;
    const e = await this.shared(() => this.bat.payload(s.block));
    if (e.state === PAYLOAD_FULLY_PRESENT) return { file: this.file, offset: e.offset + s.inBlock };
    const p = this.parent;
    const fallsThrough = this.params.hasParent && (e.state === PAYLOAD_NOT_PRESENT || e.state === PAYLOAD_UNDEFINED);
    return fallsThrough && p?.locate && offset + length <= p.virtualSize ? p.locate(offset, length) : undefined;
  }

  private allPresentCached(offset: number, length: number): boolean {
    for (const s of this.spans(offset, length)) {
      const e = this.bat.cachedPayload(s.block);
      if (!e || e.state !== PAYLOAD_FULLY_PRESENT) return false;
    }
    return true;
  }

  /** Writes into fully present blocks only; false (nothing written) when a block is not. Caller holds the lock shared. */
  private async overwriteUnlocked(length: number, offset: number, put: Put): Promise<boolean> {
    const spans = this.spans(offset, length);
    const targets: number[] = [];
    for (const s of spans) {
      // From the cache without a wait when it can: then a write spanning two blocks reaches
      // the file as soon after its turn as a one-block write, and overlapping writes queued
      // one behind the other reach it in that order.
      const e = this.bat.payloadNow(s.block) ?? await this.bat.payload(s.block);
      if (e.state !== PAYLOAD_FULLY_PRESENT || e.offset + this.params.blockSize > this.fileEnd) return false;
      targets.push(e.offset + s.inBlock);
    }
    // One block (nearly every guest write): no array of promises to wait on.
    if (spans.length === 1) await put(spans[0]!.at, spans[0]!.len, targets[0]!);
    else await Promise.all(spans.map((s, i) => put(s.at, s.len, targets[i]!)));
    return true;
  }

  async writeUnlocked(buf: Uint8Array, offset: number): Promise<void> {
    return this.putUnlocked(buf.length, offset, (at, len, to) => this.file.write(buf.subarray(at, at + len), to));
  }

  private async putUnlocked(length: number, offset: number, put: Put): Promise<void> {
    if (length === 0) return;
    await this.beginWrite(true);
    const ls = this.params.logicalSectorSize;
    const bs = this.params.blockSize;
    let tx = new SectorTx();
    for (const s of this.spans(offset, length)) {
      const e = await this.bat.payload(s.block, tx);
      if ((e.state === PAYLOAD_FULLY_PRESENT || e.state === PAYLOAD_PARTIALLY_PRESENT) && e.offset >= this.fileEnd) {
        throw corrupt(`block ${s.block} lies beyond the end of the file (${e.offset})`, { structure: 'BAT', file: this.file.name, block: s.block });
      }
      if (e.state === PAYLOAD_FULLY_PRESENT) {
        await put(s.at, s.len, e.offset + s.inBlock);
        continue;
      }
      if (e.state === PAYLOAD_PARTIALLY_PRESENT) {
        await put(s.at, s.len, e.offset + s.inBlock);
        await this.bitmaps.set(tx, await this.bitmapOffset(s.block, tx), s.block, s.inBlock / ls, s.len / ls);
      } else {
        const full = s.inBlock === 0 && s.len === bs;
        const off = await this.allocate(bs);
        await put(s.at, s.len, off + s.inBlock);
        if (this.params.hasParent && !full && (e.state === PAYLOAD_NOT_PRESENT || e.state === PAYLOAD_UNDEFINED)) {
          const chunk = Math.floor(s.block / this.g.chunkRatio);
          let sb = await this.bat.sectorBitmap(chunk, tx);
          if (sb.state !== SB_PRESENT) {
            sb = { state: SB_PRESENT, offset: await this.allocate(SECTOR_BITMAP_BLOCK) };
            await this.bat.stage(tx, sbIndex(this.g, chunk), sb);
          }
          await this.bat.stage(tx, payloadIndex(this.g, s.block), { state: PAYLOAD_PARTIALLY_PRESENT, offset: off });
          await this.bitmaps.set(tx, sb.offset, s.block, s.inBlock / ls, s.len / ls);
        } else {
          await this.bat.stage(tx, payloadIndex(this.g, s.block), { state: PAYLOAD_FULLY_PRESENT, offset: off });
        }
      }
      if (tx.size >= this.txLimit) {
        await this.flushAndCommit(tx);
        tx = new SectorTx();
      }
    }
    await this.flushAndCommit(tx);
  }

  flush(): Promise<void> {
    return this.exclusive(() => this.file.flush());
  }

  async trim(offset: number, length: number): Promise<void> {
    this.checkRange('trim', offset, length);
    return this.exclusive(() => this.trimUnlocked(offset, length));
  }

  async trimUnlocked(offset: number, length: number): Promise<void> {
    if (length === 0) return;
    await this.beginWrite(true);
    const bs = this.params.blockSize;
    const fixed = this.type === 'Fixed';
    let tx = new SectorTx();
    const zeroRanges: Array<[number, number]> = [];
    for (const s of this.spans(offset, length)) {
      const e = await this.bat.payload(s.block, tx);
      const blockEnd = Math.min(bs, this.params.virtualSize - s.block * bs);
      const whole = s.inBlock === 0 && s.len >= blockEnd;
      const pos = offset + s.at;
      if (whole && !fixed) {
        const target = this.params.hasParent ? PAYLOAD_ZERO : PAYLOAD_UNMAPPED;
        const alreadyZero = e.state === PAYLOAD_ZERO || e.state === PAYLOAD_UNMAPPED || (!this.params.hasParent && (e.state === PAYLOAD_NOT_PRESENT || e.state === PAYLOAD_UNDEFINED));
        if (!alreadyZero) await this.bat.stage(tx, payloadIndex(this.g, s.block), { state: target, offset: 0 });
      } else if (e.state === PAYLOAD_FULLY_PRESENT || e.state === PAYLOAD_PARTIALLY_PRESENT) {
        zeroRanges.push([pos, s.len]);
      } else if (this.params.hasParent && (e.state === PAYLOAD_NOT_PRESENT || e.state === PAYLOAD_UNDEFINED)) {
        zeroRanges.push([pos, s.len]);
      }
      if (tx.size >= this.txLimit) {
        await this.commit(tx);
        tx = new SectorTx();
      }
    }
    await this.commit(tx);
    for (const [pos, len] of zeroRanges) {
      const z = new Uint8Array(Math.min(len, 4 * MiB));
      for (let o = 0; o < len; o += z.length) await this.writeUnlocked(z.subarray(0, Math.min(z.length, len - o)), pos + o);
    }
  }

  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    this.checkRange('blockStatus', offset, length);
    return this.shared(() => this.blockStatusUnlocked(offset, length));
  }

  async blockStatusUnlocked(offset: number, length: number): Promise<Extent[]> {
    const out: Extent[] = [];
    const push = (x: Extent) => {
      if (x.length === 0) return;
      const last = out[out.length - 1];
      if (last && last.hole === x.hole && last.zero === x.zero && last.offset + last.length === x.offset) last.length += x.length;
      else out.push({ ...x });
    };
    const ls = this.params.logicalSectorSize;
    for (const s of this.spans(offset, length)) {
      const pos = offset + s.at;
      const e = await this.bat.payload(s.block);
      if (e.state === PAYLOAD_FULLY_PRESENT) push({ offset: pos, length: s.len, hole: false, zero: false });
      else if (e.state === PAYLOAD_PARTIALLY_PRESENT) {
        const runs = await this.bitmaps.runs(await this.bitmapOffset(s.block), s.block, s.inBlock / ls, s.len / ls);
        let o = 0;
        for (const [present, n] of runs) {
          if (present) push({ offset: pos + o, length: n * ls, hole: false, zero: false });
          else for (const x of await this.parentStatus(pos + o, n * ls)) push(x);
          o += n * ls;
        }
      } else if (this.params.hasParent && (e.state === PAYLOAD_NOT_PRESENT || e.state === PAYLOAD_UNDEFINED)) {
        for (const x of await this.parentStatus(pos, s.len)) push(x);
      } else push({ offset: pos, length: s.len, hole: true, zero: true });
    }
    return out;
  }

  private async parentStatus(offset: number, length: number): Promise<Extent[]> {
    const p = this.parent;
    const inside = p ? Math.max(0, Math.min(length, p.virtualSize - offset)) : 0;
    const out: Extent[] = [];
    if (p && inside > 0) {
      out.push(...(p instanceof VhdxDisk ? await p.blockStatusUnlocked(offset, inside) : await p.blockStatus(offset, inside)));
    }
    if (inside < length) out.push({ offset: offset + inside, length: length - inside, hole: true, zero: true });
    return out;
  }

  /**
   * Ranges this file itself defines, without the parent: `data` ranges hold payload here,
   * `zero` ranges are blocks in the ZERO/UNMAPPED state (they hide the parent).
   */
  async ownRanges(): Promise<Array<{ offset: number; length: number; zero: boolean }>> {
    const out: Array<{ offset: number; length: number; zero: boolean }> = [];
    const bs = this.params.blockSize, ls = this.params.logicalSectorSize;
    const push = (offset: number, length: number, zero: boolean) => {
      const last = out[out.length - 1];
      if (last && last.zero === zero && last.offset + last.length === offset) last.length += length;
      else out.push({ offset, length, zero });
    };
    for (let b = 0; b < this.g.dataBlocks; b++) {
      const e = await this.bat.payload(b);
      const len = Math.min(bs, this.params.virtualSize - b * bs);
      if (e.state === PAYLOAD_FULLY_PRESENT) push(b * bs, len, false);
      else if (e.state === PAYLOAD_PARTIALLY_PRESENT) {
        let o = 0;
        for (const [present, n] of await this.bitmaps.runs(await this.bitmapOffset(b), b, 0, len / ls)) {
          if (present) push(b * bs + o, n * ls, false);
          o += n * ls;
        }
      } else if (e.state === PAYLOAD_ZERO || e.state === PAYLOAD_UNMAPPED) push(b * bs, len, true);
    }
    return out;
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return this.exclusive(async () => {
      if (this.log) {
        await this.log.close();
        await this.file.flush();
      }
      this.closed = true;
      await this.file.close();
      if (this.parent) await this.parent.close();
    });
  }

  /** Close only this file, leaving the parent open (used by merge). */
  async closeSelf(): Promise<void> {
    await this.exclusive(async () => {
      if (this.log) {
        await this.log.close();
        await this.file.flush();
      }
      this.closed = true;
      await this.file.close();
    });
  }

  /** Empty the log (all entries are applied): the next commit starts a fresh one. */
  async retireLog(): Promise<void> {
    if (this.log) {
      await this.log.close();
      this.log = new LogWriter(this.file, this.logArea, this.headers, true);
    }
  }

  /** Reset the log writer and caches (after a structure moved). */
  resetCaches(): void {
    this.bat = new Bat(this.file, this.batRegion.fileOffset, this.batRegion.length, this.g);
    this.bitmaps = new SectorBitmaps(this.file, this.g);
  }
}

export function geometryOf(p: DiskParams): BatGeometry {
  return batGeometry(p.blockSize, p.logicalSectorSize, p.virtualSize, p.hasParent);
}

let zeroBuf = Buffer.alloc(0);
function allZero(b: Uint8Array): boolean {
  if (zeroBuf.length < b.length) zeroBuf = Buffer.alloc(b.length);
  return Buffer.from(b.buffer, b.byteOffset, b.length).equals(zeroBuf.subarray(0, b.length));
}
