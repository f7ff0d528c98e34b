// The changed-blocks stream a backup point stores in the repository (one per drive): a JSON
// header line, then the bytes of every data extent in order. Zero extents carry no bytes (an
// incremental says "these changed blocks read as zeros now"); a full point lists only the
// disk's data. Restic stores the stream (deduplicated, encrypted) as one file of a snapshot;
// restore reads it back with `restic dump` and applies it to a new disk, the full point first,
// then each incremental in order.
import type { VirtualDisk } from '../blockio/index.ts';
import { VmhostError } from '../common/index.ts';

export const STREAM_FORMAT = 'vmhost-changed-blocks';

/** [offset, length, 'd' (bytes follow) | 'z' (reads as zeros)] */
export type StreamExtent = [number, number, 'd' | 'z'];

export interface StreamHeader {
  format: typeof STREAM_FORMAT;
  version: 1;
  virtualSize: number;
  logicalSectorSize: number;
  physicalSectorSize: number;
  /** A full point: the disk is its data extents and zeros elsewhere. Else: only the extents changed. */
  full: boolean;
  extents: StreamExtent[];
  /** The VM's config at the point (the first drive's stream only): what Restore-VMBackup -NewVMName registers. Opaque here. */
  config?: unknown;
  /** The VM's UEFI variable stores at the point (the first drive's stream only; backup-firmware.ts). Opaque here. */
  firmwareVars?: unknown;
}

const PIECE = 1 << 20;

/**
 * Split `ranges` by what `disk` holds there: data ('d') and zeros ('z'); a full point drops
 * the zeros (a new disk reads zeros anyway).
 */
export async function streamExtents(disk: VirtualDisk, ranges: ReadonlyArray<{ offset: number; length: number }>, full: boolean): Promise<StreamExtent[]> {
  const out: StreamExtent[] = [];
  for (const r of ranges) {
    for (const x of await disk.blockStatus(r.offset, r.length)) {
      const kind = x.zero ? 'z' : 'd';
      if (full && kind === 'z') continue;
      const last = out.at(-1);
      if (last && last[2] === kind && last[0] + last[1] === x.offset) last[1] += x.length;
      else out.push([x.offset, x.length, kind]);
    }
  }
  return out;
}

/** The stream of `header` with its data extents read from `disk`, in 1 MiB pieces. */
export async function* encodeStream(header: StreamHeader, disk: VirtualDisk): AsyncGenerator<Uint8Array> {
  yield Buffer.from(JSON.stringify(header) + '\n');
  for (const [offset, length, kind] of header.extents) {
    if (kind !== 'd') continue;
    for (let o = 0; o < length; o += PIECE) {
      const b = new Uint8Array(Math.min(PIECE, length - o));
      await disk.read(b, offset + o);
      yield b;
    }
  }
}

/** Bytes of data a header's stream carries. */
export function dataBytes(h: StreamHeader): number {
  return h.extents.reduce((a, [, l, k]) => a + (k === 'd' ? l : 0), 0);
}

function streamError(what: string, ctx: Record<string, string | number | undefined>): VmhostError {
  return new VmhostError('BACKUP_STREAM_INVALID', `backup stream ${what}`, { op: 'restore-backup', ...ctx });
}

/**
 * Apply a stream read from `chunks` to `target` (opened read-write, the header's size). `fresh`:
 * the target was just created, so zeros need not be written (it stays sparse). Resolves with
 * the header; a stream that ends early, runs long or does not fit is BACKUP_STREAM_INVALID.
 */
export async function applyStream(chunks: AsyncIterable<Uint8Array>, open: (h: StreamHeader) => Promise<VirtualDisk>, fresh: boolean, name: string): Promise<StreamHeader> {
  let header: StreamHeader | undefined;
  let target: VirtualDisk | undefined;
  let head = Buffer.alloc(0);
  let ext = 0;
  let at = 0;
  const pending: Buffer[] = [];
  let pendingBytes = 0;
  const zero = new Uint8Array(PIECE);

  const dataExtents = () => header!.extents.filter((e) => e[2] === 'd');
  const flushPending = async () => {
    if (pendingBytes === 0) return;
    const [offset] = dataExtents()[ext]!;
    const b = Buffer.concat(pending, pendingBytes);
    const start = offset + at - pendingBytes;
    if (!(fresh && b.every((x) => x === 0))) await target!.write(b, start);
    pending.length = 0;
    pendingBytes = 0;
  };
  const take = async (b: Buffer) => {
    let p = 0;
    const ds = dataExtents();
    while (p < b.length) {
      const e = ds[ext];
      if (!e) throw streamError(`${name} runs past its last extent`, { name });
      const n = Math.min(b.length - p, e[1] - at, PIECE - pendingBytes);
      pending.push(b.subarray(p, p + n));
      pendingBytes += n;
      at += n;
      p += n;
      if (pendingBytes === PIECE || at === e[1]) await flushPending();
      if (at === e[1]) { ext++; at = 0; }
    }
  };
  for await (const raw of chunks) {
    const chunk = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    if (header) { await take(chunk); continue; }
    head = Buffer.concat([head, chunk]);
    const nl = head.indexOf(0x0a);
    if (nl < 0) {
      if (head.length > 64 << 20) throw streamError(`${name} has no header line`, { name });
      continue;
    }
    header = parseHeader(head.subarray(0, nl).toString('utf8'), name);
    target = await open(header);
    if (!fresh) {
      for (const [offset, length, kind] of header.extents) {
        if (kind === 'z') for (let o = 0; o < length; o += PIECE) await target.write(zero.subarray(0, Math.min(PIECE, length - o)), offset + o);
      }
    }
    await take(head.subarray(nl + 1));
  }
  if (!header) throw streamError(`${name} is empty`, { name });
  if (ext !== dataExtents().length) throw streamError(`${name} ended early (extent ${ext} of ${dataExtents().length})`, { name });
  return header;
}

function parseHeader(line: string, name: string): StreamHeader {
  let h: StreamHeader;
  try {
    h = JSON.parse(line) as StreamHeader;
  } catch {
    throw streamError(`${name}: the header is not JSON`, { name });
  }
  if (h.format !== STREAM_FORMAT || h.version !== 1 || !Array.isArray(h.extents) || !Number.isSafeInteger(h.virtualSize)) {
    throw streamError(`${name} is not a ${STREAM_FORMAT} stream of version 1`, { name });
  }
  for (const [o, l] of h.extents) {
    if (!Number.isSafeInteger(o) || !Number.isSafeInteger(l) || o < 0 || l <= 0 || o + l > h.virtualSize) throw streamError(`${name}: extent [${o}, +${l}) is outside the disk`, { name });
  }
  return h;
}
