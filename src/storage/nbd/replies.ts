// Encoding of transmission-phase replies: simple replies, structured chunks (read data,
// block status, error). Headers are written into the same buffer as the payload so that a
// reply is one socket write; the read path asks for that buffer before reading the disk.
// Each takes the allocator to make its buffer with (a connection's ReplyWriter.alloc).
import {
  SIMPLE_REPLY_MAGIC, SIMPLE_REPLY_SIZE, STRUCTURED_REPLY_MAGIC, CHUNK_HEADER_SIZE,
  REPLY_FLAG_DONE, REPLY_TYPE_OFFSET_DATA, REPLY_TYPE_OFFSET_HOLE, REPLY_TYPE_BLOCK_STATUS, REPLY_TYPE_ERROR,
  STATE_HOLE, STATE_ZERO, MAX_PAYLOAD,
} from './protocol.ts';
import type { Extent } from '../../blockio/virtual-disk.ts';

/** The client's 8-byte handle, kept as two 32-bit halves (no BigInt per request). */
export interface Handle {
  hi: number;
  lo: number;
}

/** Makes a reply's buffer of `n` bytes (contents undefined). */
export type Alloc = (n: number) => Buffer;
const heap: Alloc = (n) => Buffer.allocUnsafe(n);

export function simpleReply(error: number, h: Handle, dataLength = 0, alloc = heap): Buffer {
  const b = alloc(SIMPLE_REPLY_SIZE + dataLength);
  b.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
  b.writeUInt32BE(error >>> 0, 4);
  b.writeUInt32BE(h.hi, 8);
  b.writeUInt32BE(h.lo, 12);
  return b;
}

function chunkHeader(b: Buffer, flags: number, type: number, h: Handle, length: number): void {
  b.writeUInt32BE(STRUCTURED_REPLY_MAGIC, 0);
  b.writeUInt16BE(flags, 4);
  b.writeUInt16BE(type, 6);
  b.writeUInt32BE(h.hi, 8);
  b.writeUInt32BE(h.lo, 12);
  b.writeUInt32BE(length, 16);
}

/** Bytes before the data in a one-chunk structured read reply. */
export const READ_CHUNK_PREFIX = CHUNK_HEADER_SIZE + 8;

/**
 * A final OFFSET_DATA chunk with room for `length` bytes of data at READ_CHUNK_PREFIX, or
 * (`headerOnly`) just its header, for data sent separately (zeroPayload).
 */
export function readChunk(h: Handle, offset: number, length: number, headerOnly = false, alloc = heap): Buffer {
  const b = alloc(READ_CHUNK_PREFIX + (headerOnly ? 0 : length));
  chunkHeader(b, REPLY_FLAG_DONE, REPLY_TYPE_OFFSET_DATA, h, 8 + length);
  b.writeUInt32BE(Math.floor(offset / 2 ** 32), 20);
  b.writeUInt32BE(offset >>> 0, 24);
  return b;
}

/** A final OFFSET_HOLE chunk: `length` bytes at `offset` read as zeros (32 bytes on the wire). */
export function holeChunk(h: Handle, offset: number, length: number, alloc = heap): Buffer {
  const b = alloc(CHUNK_HEADER_SIZE + 12);
  chunkHeader(b, REPLY_FLAG_DONE, REPLY_TYPE_OFFSET_HOLE, h, 12);
  b.writeUInt32BE(Math.floor(offset / 2 ** 32), 20);
  b.writeUInt32BE(offset >>> 0, 24);
  b.writeUInt32BE(length, 28);
  return b;
}

// One zero buffer for every reply that must carry zeros as data (simple replies, DF reads):
// grown to the largest such read, never written, so the socket may queue it any number of times.
let zeros = Buffer.alloc(0);

/** `length` zero bytes (length ≤ MAX_PAYLOAD), shared: never modify the result. */
export function zeroPayload(length: number): Buffer {
  if (zeros.length < length) zeros = Buffer.alloc(Math.min(MAX_PAYLOAD, Math.max(length, 2 * zeros.length, 64 * 1024)));
  return zeros.subarray(0, length);
}

export function errorChunk(h: Handle, error: number, message: string, alloc = heap): Buffer {
  const msg = Buffer.from(message.slice(0, 200), 'utf8');
  const b = alloc(CHUNK_HEADER_SIZE + 6 + msg.length);
  chunkHeader(b, REPLY_FLAG_DONE, REPLY_TYPE_ERROR, h, 6 + msg.length);
  b.writeUInt32BE(error, 20);
  b.writeUInt16BE(msg.length, 24);
  msg.copy(b, 26);
  return b;
}

/** A final BLOCK_STATUS chunk for one metadata context: at most `maxDescriptors` extents. */
export function blockStatusChunk(h: Handle, contextId: number, extents: Extent[], maxDescriptors: number, alloc = heap): Buffer {
  const n = Math.max(1, Math.min(extents.length, maxDescriptors));
  const b = alloc(CHUNK_HEADER_SIZE + 4 + 8 * n);
  chunkHeader(b, REPLY_FLAG_DONE, REPLY_TYPE_BLOCK_STATUS, h, 4 + 8 * n);
  b.writeUInt32BE(contextId, 20);
  for (let i = 0; i < n; i++) {
    const e = extents[i]!;
    b.writeUInt32BE(e.length, 24 + 8 * i);
    b.writeUInt32BE((e.hole ? STATE_HOLE : 0) | (e.zero ? STATE_ZERO : 0), 28 + 8 * i);
  }
  return b;
}
