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
import { TRACKING_BLOCK, type ChangedExtent } from '../storage/index.ts';

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
