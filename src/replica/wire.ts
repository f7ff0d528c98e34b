// The replication wire format between a primary and a Replica server, inside the TLS
// connection: frames of a 4-byte big-endian header length, a JSON header, then `bytes` bytes of
// payload (only `data` frames have one). A connection opens with `hello` (what the primary wants:
// test, replicate, remove), the server answers `ok` or `error`; a replication is `begin` (the
// cycle: initial full copy or changed blocks, the drives' shapes, the VM's config), `data` frames
// (one extent piece of one drive: its bytes, zlib-deflated when the relationship compresses, or
// a zero extent without payload), `end`; the server answers `ack` only once the point is durable
// on its disks (flushed and recorded). A resynchronization (block-compare.ts) puts `compare`
// (the drives) before `begin`: the server answers `hashes` frames, each a run of its blocks'
// digests in order, and the point that follows is a delta of the differing blocks that re-bases
// the replica. Every header is validated here before it is used.
import type { Socket } from 'node:net';
import { VmhostError } from '../common/index.ts';

export const WIRE_VERSION = 1;
/** Largest extent piece a `data` frame carries (uncompressed). */
export const PIECE = 1 << 20;
const MAX_HEADER = 1 << 20;
/** Deflate can grow incompressible data a little; never by this much. */
const MAX_PAYLOAD = PIECE + (64 << 10);

/** `reverse`: Set-VMReplication -Reverse on the failed-over replica asks its old primary to become its replica (failover.ts). */
export type Op = 'test' | 'replicate' | 'remove' | 'reverse';
export type Compression = 'deflate' | 'none';

export interface WireDrive { id: string; virtualSize: number; logicalSectorSize: number; physicalSectorSize: number; fileName: string }

export type Frame =
  | { t: 'hello'; v: number; op: Op; vmId?: string; vmName?: string; basedOn?: number }
  | { t: 'begin'; kind: 'initial' | 'delta'; time: string; recoveryHistory: number; compression: Compression; drives: WireDrive[]; config?: unknown
    /** The point's type (absent from older primaries: crash-consistent). */
    consistency?: 'ApplicationConsistent' | 'CrashConsistent'; reason?: string
    /** Continuous mode: the shipment is merged into the newest recovery point rather than becoming one. */
    append?: boolean
    /** The initial copy the point builds on (its id, made by the primary): a delta meant for another copy is refused. */
    base?: string }
  | { t: 'data'; drive: string; offset: number; length: number; zero: boolean; bytes: number }
  | { t: 'end' }
  /** Resynchronization: the digests of these drives' blocks, please (the server's newest state). */
  | { t: 'compare'; drives: Array<{ id: string; virtualSize: number }> }
  /** Digests of blocks `first`… of one drive, base64 (block-compare.ts: DIGEST bytes each). */
  | { t: 'hashes'; drive: string; first: number; digests: string }
  /** `resync` (to a reverse): the old primary's disks became the replica as they are, to be compared (Resume-VMReplication -Resynchronize). */
  | { t: 'ok'; server?: string; start?: 'delta' | 'full' | 'resync'
    /** To a hello naming a VM: the id of the initial copy this server's replica of it is (none: no replica). */
    base?: string }
  | { t: 'ack'; seq: number; points: number }
  | { t: 'error'; code: string; message: string };

export function wireError(message: string): VmhostError {
  return new VmhostError('REPLICATION_PROTOCOL', `replication stream: ${message}`, { op: 'replication' });
}

const isInt = (x: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): x is number => Number.isSafeInteger(x) && (x as number) >= min && (x as number) <= max;
const isStr = (x: unknown, max = 4096): x is string => typeof x === 'string' && x.length > 0 && x.length <= max;
const ID = /^[0-9a-f-]{36}$/i;

/** A header checked field by field; anything else is REPLICATION_PROTOCOL. */
export function parseFrame(raw: unknown): Frame {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw wireError('a header is not an object');
  const f = raw as Record<string, unknown>;
  switch (f.t) {
    case 'hello':
      if (f.v !== WIRE_VERSION) throw wireError(`version ${String(f.v)} is not ${WIRE_VERSION}`);
      if (f.op !== 'test' && f.op !== 'replicate' && f.op !== 'remove' && f.op !== 'reverse') throw wireError(`hello: unknown op ${String(f.op)}`);
      if (f.op === 'reverse' && !isInt(f.basedOn)) throw wireError('hello: reverse names the point it failed over to');
      if (f.op !== 'test' && (!isStr(f.vmId) || !ID.test(f.vmId) || !isStr(f.vmName, 100))) throw wireError('hello: a VM id and name are needed');
      if (f.vmId !== undefined && (!isStr(f.vmId) || !ID.test(f.vmId))) throw wireError('hello: bad VM id');
      return f as Frame;
    case 'begin': {
      if (f.kind !== 'initial' && f.kind !== 'delta') throw wireError(`begin: unknown kind ${String(f.kind)}`);
      if (!isStr(f.time, 40) || Number.isNaN(Date.parse(f.time)) || !isInt(f.recoveryHistory, 0, 24)) throw wireError('begin: bad time or recoveryHistory');
      if (f.compression !== 'deflate' && f.compression !== 'none') throw wireError(`begin: unknown compression ${String(f.compression)}`);
      if (!Array.isArray(f.drives) || f.drives.length === 0 || f.drives.length > 256) throw wireError('begin: 1-256 drives');
      for (const d of f.drives as Array<Record<string, unknown>>) {
        if (typeof d !== 'object' || d === null || !isStr(d.id) || !ID.test(d.id) || !isInt(d.virtualSize, 512) || d.virtualSize % 512 !== 0
          || (d.logicalSectorSize !== 512 && d.logicalSectorSize !== 4096) || (d.physicalSectorSize !== 512 && d.physicalSectorSize !== 4096)
          || !isStr(d.fileName, 255) || /[/\\]|^\.\.?$/.test(d.fileName)) throw wireError('begin: a drive is malformed');
      }
      if (new Set((f.drives as WireDrive[]).map((d) => d.id)).size !== f.drives.length) throw wireError('begin: a drive is listed twice');
      if (f.kind === 'initial' && (typeof f.config !== 'object' || f.config === null)) throw wireError('begin: an initial replication carries the VM configuration');
      if (f.consistency !== undefined && f.consistency !== 'ApplicationConsistent' && f.consistency !== 'CrashConsistent') throw wireError(`begin: unknown consistency ${String(f.consistency)}`);
      if (f.reason !== undefined && (typeof f.reason !== 'string' || f.reason.length > 1000)) throw wireError('begin: bad reason');
      if (f.append !== undefined && (f.append !== true || f.kind !== 'delta')) throw wireError('begin: only a delta appends to a recovery point');
      if (f.base !== undefined && (!isStr(f.base) || !ID.test(f.base))) throw wireError('begin: bad base');
      return f as Frame;
    }
    case 'data':
      if (!isStr(f.drive) || !isInt(f.offset) || !isInt(f.length, 1, PIECE) || typeof f.zero !== 'boolean' || !isInt(f.bytes, 0, MAX_PAYLOAD)) throw wireError('data: bad drive, offset, length or bytes');
      if (f.offset % 512 !== 0 || f.length % 512 !== 0) throw wireError(`data: extent [${f.offset}, +${f.length}) is not sector-aligned`);
      if (f.zero && f.bytes !== 0) throw wireError('data: a zero extent carries no bytes');
      if (!f.zero && f.bytes === 0) throw wireError('data: a data extent without bytes');
      return f as Frame;
    case 'end': return { t: 'end' };
    case 'compare':
      if (!Array.isArray(f.drives) || f.drives.length === 0 || f.drives.length > 256) throw wireError('compare: 1-256 drives');
      for (const d of f.drives as Array<Record<string, unknown>>) {
        if (typeof d !== 'object' || d === null || !isStr(d.id) || !ID.test(d.id) || !isInt(d.virtualSize, 512)) throw wireError('compare: a drive is malformed');
      }
      return f as Frame;
    case 'hashes':
      // DIGESTS_PER_FRAME × 16 bytes in base64 is ~350 KB; the header limit bounds it anyway.
      if (!isStr(f.drive) || !isInt(f.first) || typeof f.digests !== 'string' || f.digests.length === 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(f.digests)) throw wireError('hashes: bad drive, first or digests');
      return f as Frame;
    case 'ok':
      if (f.start !== undefined && f.start !== 'delta' && f.start !== 'full' && f.start !== 'resync') throw wireError(`ok: unknown start ${String(f.start)}`);
      if (f.base !== undefined && (!isStr(f.base) || !ID.test(f.base))) throw wireError('ok: bad base');
      return f as Frame;
    case 'ack':
      if (!isInt(f.seq) || !isInt(f.points)) throw wireError('ack: bad seq');
      return f as Frame;
    case 'error':
      if (!isStr(f.code, 100) || typeof f.message !== 'string') throw wireError('error: bad code or message');
      return f as Frame;
    default:
      throw wireError(`unknown frame type ${JSON.stringify(f.t)}`);
  }
}

/** The runs of `buf` holding a non-zero byte, in whole `unit`s (the last one may be short): [start, length]. (blockio's nonZeroRuns does this for a file through the native addon; here the bytes are already read.) */
export function nonZeroUnits(buf: Uint8Array, unit: number): Array<readonly [number, number]> {
  const out: Array<[number, number]> = [];
  const zero = Buffer.alloc(unit); // compared with memcmp, not byte by byte in JavaScript
  for (let at = 0; at < buf.length; at += unit) {
    const end = Math.min(buf.length, at + unit);
    if (Buffer.from(buf.buffer, buf.byteOffset + at, end - at).equals(zero.subarray(0, end - at))) continue;
    const last = out.at(-1);
    if (last && last[0] + last[1] === at) last[1] += end - at;
    else out.push([at, end - at]);
  }
  return out;
}

/** One frame as bytes: the header's length, the header, the payload. */
export function encodeFrame(f: Frame, payload?: Uint8Array): Buffer[] {
  const head = Buffer.from(JSON.stringify(f));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(head.length);
  return payload ? [len, head, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)] : [len, head];
}

/** Write a frame, waiting for the socket to drain when its buffer is full. */
export async function sendFrame(s: Socket, f: Frame, payload?: Uint8Array): Promise<void> {
  let ok = true;
  for (const b of encodeFrame(f, payload)) ok = s.write(b) && ok;
  if (!ok && !s.destroyed) await new Promise<void>((res, rej) => { s.once('drain', res); s.once('close', () => rej(wireError('the connection closed'))); });
}

/** Frames read off a byte stream, each header validated, `data` frames with their payload. */
export async function* readFrames(chunks: AsyncIterable<Buffer>): AsyncGenerator<{ frame: Frame; payload: Buffer | undefined }> {
  // Chunks are joined only once a whole frame is there: a 1 MiB payload arriving in 16 KiB TLS
  // records is copied once, not once per record.
  let parts: Buffer[] = [];
  let have = 0;
  let need = 4;
  let pending: { frame: Frame; hl: number } | undefined;
  for await (const c of chunks) {
    parts.push(c);
    have += c.length;
    while (have >= need) {
      const buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts, have);
      parts = [buf];
      const hl = buf.readUInt32BE(0);
      if (hl === 0 || hl > MAX_HEADER) throw wireError(`a header of ${hl} bytes`);
      if (buf.length < 4 + hl) { need = 4 + hl; continue; }
      if (!pending) {
        let json: unknown;
        try {
          json = JSON.parse(buf.subarray(4, 4 + hl).toString('utf8'));
        } catch {
          throw wireError('a header is not JSON');
        }
        pending = { frame: parseFrame(json), hl };
      }
      const pl = pending.frame.t === 'data' ? pending.frame.bytes : 0;
      if (buf.length < 4 + hl + pl) { need = 4 + hl + pl; continue; }
      const out = { frame: pending.frame, payload: pl > 0 ? Buffer.from(buf.subarray(4 + hl, 4 + hl + pl)) : undefined };
      const rest = buf.subarray(4 + hl + pl);
      parts = rest.length > 0 ? [rest] : [];
      have = rest.length;
      need = 4;
      pending = undefined;
      yield out;
    }
  }
  if (have > 0) throw wireError(`the connection ended inside a frame (${have} bytes left)`);
}
