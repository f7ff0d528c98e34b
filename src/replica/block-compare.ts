// Resynchronization by block comparison (Hyper-V's resync; Start-VMInitialReplication -UseBackup
// builds on it): when the primary cannot know what the replica lacks — its tracker lost track,
// an unplanned failover was reversed, the replica was seeded from a backup — the Replica server
// digests each 64 KiB block of its newest state, the primary digests the same blocks of its
// point, and only the blocks whose digests differ cross the wire. A digest is the first 16 bytes
// of the block's SHA-256: 128 bits make an accidental match negligible, and the replica side is
// trusted (authenticated), so no one chooses blocks to collide. What reads as zeros (holes,
// unallocated blocks, zero extents) is digested without being read.
import { createHash } from 'node:crypto';
import type { VirtualDisk } from '../blockio/index.ts';
import { TRACKING_BLOCK, type ChangedExtent, type TakenChanges } from '../storage/index.ts';
import { wireError, type Frame } from './wire.ts';

export const DIGEST = 16;
/** Blocks digested per read: 1 MiB. */
const CHUNK_BLOCKS = 16;
/** Digests per `hashes` frame: 256 KiB of digests, ~350 KB of base64 in a header (the wire's header limit is 1 MiB). */
export const DIGESTS_PER_FRAME = 16384;

const digestOf = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest().subarray(0, DIGEST);

const zeroDigests = new Map<number, Buffer>();
function zeroDigest(length: number): Buffer {
  let d = zeroDigests.get(length);
  if (!d) zeroDigests.set(length, (d = digestOf(new Uint8Array(length))));
  return d;
}

export function blockCount(virtualSize: number): number {
  return Math.ceil(virtualSize / TRACKING_BLOCK);
}

/** Each block's digest, block 0 first (`DIGEST` bytes each; the last block may be short and is digested as it is). */
export async function blockDigests(disk: VirtualDisk, onProgress: (fraction: number) => void = () => undefined): Promise<Buffer> {
  const size = disk.virtualSize;
  const out = Buffer.alloc(blockCount(size) * DIGEST);
  const chunk = CHUNK_BLOCKS * TRACKING_BLOCK;
  const buf = new Uint8Array(chunk);
  for (let off = 0; off < size; off += chunk) {
    const len = Math.min(chunk, size - off);
    const zero = (await disk.blockStatus(off, len)).every((x) => x.zero);
    if (!zero) await disk.read(buf.subarray(0, len), off);
    for (let at = 0; at < len; at += TRACKING_BLOCK) {
      const n = Math.min(TRACKING_BLOCK, len - at);
      (zero ? zeroDigest(n) : digestOf(buf.subarray(at, at + n))).copy(out, ((off + at) / TRACKING_BLOCK) * DIGEST);
    }
    onProgress(Math.min(1, (off + len) / size));
  }
  return out;
}

/** The blocks whose digests differ, as byte ranges merged into runs and clipped to the disk. */
export function differingExtents(local: Buffer, remote: Buffer, virtualSize: number): ChangedExtent[] {
  const out: ChangedExtent[] = [];
  const n = blockCount(virtualSize);
  for (let b = 0; b < n; b++) {
    if (local.subarray(b * DIGEST, (b + 1) * DIGEST).equals(remote.subarray(b * DIGEST, (b + 1) * DIGEST))) continue;
    const offset = b * TRACKING_BLOCK;
    const length = Math.min(TRACKING_BLOCK, virtualSize - offset);
    const last = out.at(-1);
    if (last && last.offset + last.length === offset) last.length += length;
    else out.push({ offset, length });
  }
  return out;
}

/** A drive's digests as `hashes` frames, in order. */
export function digestFrames(drive: string, digests: Buffer): Array<Extract<Frame, { t: 'hashes' }>> {
  const out: Array<Extract<Frame, { t: 'hashes' }>> = [];
  const step = DIGESTS_PER_FRAME * DIGEST;
  for (let at = 0; at < digests.length; at += step) out.push({ t: 'hashes', drive, first: at / DIGEST, digests: digests.subarray(at, at + step).toString('base64') });
  return out;
}

/** The primary's end of a connection to the Replica server. */
export interface CompareSink {
  send(f: Frame): Promise<void>;
  expect(type: 'hashes'): Promise<Extract<Frame, { t: 'hashes' }>>;
}

/**
 * Ask the Replica server for its digests of the drives, digest the point's own copy meanwhile,
 * and answer per drive the blocks that differ: what a resynchronization sends.
 */
export async function compareBlocks(sink: CompareSink, drives: ReadonlyArray<{ id: string; copy: VirtualDisk }>, progress: (fraction: number) => void = () => undefined): Promise<Map<string, Pick<TakenChanges, 'extents' | 'full' | 'bytes'>>> {
  await sink.send({ t: 'compare', drives: drives.map((d) => ({ id: d.id, virtualSize: d.copy.virtualSize })) });
  const out = new Map<string, Pick<TakenChanges, 'extents' | 'full' | 'bytes'>>();
  for (const [i, d] of drives.entries()) {
    const [local, remote] = await Promise.all([blockDigests(d.copy, (f) => progress((i + f) / drives.length)), receiveDigests(sink, d.id, d.copy.virtualSize)]);
    const extents = differingExtents(local, remote, d.copy.virtualSize);
    out.set(d.id, { extents, full: false, bytes: extents.reduce((a, x) => a + x.length, 0) });
  }
  return out;
}

/** One drive's digests off the wire: frames in order until every block has one. */
async function receiveDigests(sink: CompareSink, drive: string, virtualSize: number): Promise<Buffer> {
  const out = Buffer.alloc(blockCount(virtualSize) * DIGEST);
  for (let have = 0; have < out.length;) {
    const f = await sink.expect('hashes');
    const bytes = Buffer.from(f.digests, 'base64');
    if (f.drive !== drive || f.first * DIGEST !== have || bytes.length % DIGEST !== 0 || have + bytes.length > out.length) {
      throw wireError(`hashes: drive ${f.drive} from block ${f.first} (${bytes.length} bytes) where drive ${drive}'s block ${have / DIGEST} was due`);
    }
    bytes.copy(out, have);
    have += bytes.length;
  }
  return out;
}
