// The two VHDX headers (2.2.2): parse, validate, choose the current one, and update them
// with the two-step sequence-number protocol. Headers locate the log, so they are the one
// structure that is never written through the log.
import type { BlockFile } from '../blockio/block-file.ts';
import {
  HEADER1_OFFSET, HEADER2_OFFSET, HEADER_SIZE, SIG_HEAD, MAX_LOG_LENGTH, MiB, MAX_FILE_OFFSET,
  ascii, checksum, corrupt, put16, put32, put64big, putAscii, u16, u32, u64, u64big,
} from './format.ts';
import { readGuid, writeGuid } from './guid.ts';

export interface Header {
  sequenceNumber: bigint;
  fileWriteGuid: string;
  dataWriteGuid: string;
  logGuid: string;
  logVersion: number;
  version: number;
  logLength: number;
  logOffset: number;
}

export function encodeHeader(h: Header): Uint8Array {
  const b = new Uint8Array(HEADER_SIZE);
  putAscii(b, 0, SIG_HEAD);
  put64big(b, 8, h.sequenceNumber);
  writeGuid(b, 16, h.fileWriteGuid);
  writeGuid(b, 32, h.dataWriteGuid);
  writeGuid(b, 48, h.logGuid);
  put16(b, 64, h.logVersion);
  put16(b, 66, h.version);
  put32(b, 68, h.logLength);
  put64big(b, 72, BigInt(h.logOffset));
  put32(b, 4, checksum(b, 4));
  return b;
}

/** Parse one header; undefined when signature or checksum do not validate. */
export function decodeHeader(b: Uint8Array): Header | undefined {
  if (b.length < HEADER_SIZE || ascii(b, 0, 4) !== SIG_HEAD) return undefined;
  if (u32(b, 4) !== checksum(b.subarray(0, HEADER_SIZE), 4)) return undefined;
  return {
    sequenceNumber: u64big(b, 8),
    fileWriteGuid: readGuid(b, 16),
    dataWriteGuid: readGuid(b, 32),
    logGuid: readGuid(b, 48),
    logVersion: u16(b, 64),
    version: u16(b, 66),
    logLength: u32(b, 68),
    logOffset: u64(b, 72),
  };
}

export interface CurrentHeader {
  header: Header;
  /** 0 for the header at 64 KiB, 1 for the one at 128 KiB. */
  slot: 0 | 1;
  /** Both headers valid and identical in sequence number (Disk2VHD writes such files). */
  problems: string[];
}

/**
 * Choose the current header. Per 2.2.2 it is the only valid one or the valid one with the
 * greater SequenceNumber. Two valid headers with equal sequence numbers are accepted only
 * when their contents are identical (Disk2VHD writes the same header twice); otherwise
 * there is no current header and the file is corrupt.
 */
export async function readCurrentHeader(file: BlockFile): Promise<CurrentHeader> {
  const raw = [new Uint8Array(HEADER_SIZE), new Uint8Array(HEADER_SIZE)] as const;
  await file.read(raw[0], HEADER1_OFFSET);
  await file.read(raw[1], HEADER2_OFFSET);
  const h = [decodeHeader(raw[0]), decodeHeader(raw[1])];
  const problems: string[] = [];
  if (!h[0]) problems.push('header 1 (64 KiB) is invalid');
  if (!h[1]) problems.push('header 2 (128 KiB) is invalid');
  let slot: 0 | 1;
  if (h[0] && h[1]) {
    if (h[0].sequenceNumber === h[1].sequenceNumber) {
      if (!raw[0].every((v, i) => v === raw[1][i])) {
        throw corrupt('both VHDX headers are valid with the same sequence number but differ', {
          structure: 'header', offset: HEADER1_OFFSET, file: file.name,
        });
      }
      slot = 0;
    } else slot = h[0].sequenceNumber > h[1].sequenceNumber ? 0 : 1;
  } else if (h[0]) slot = 0;
  else if (h[1]) slot = 1;
  else throw corrupt('no valid VHDX header', { structure: 'header', offset: HEADER1_OFFSET, file: file.name });
  const header = h[slot]!;
  validateHeader(header, file.name, slot === 0 ? HEADER1_OFFSET : HEADER2_OFFSET);
  return { header, slot, problems };
}

function validateHeader(h: Header, name: string, offset: number): void {
  const ctx = { structure: 'header', offset, file: name };
  if (h.version !== 1) throw corrupt(`unsupported VHDX header version ${h.version}`, ctx);
  if (h.logVersion !== 0) throw corrupt(`unsupported VHDX log version ${h.logVersion}`, ctx);
  if (h.logLength === 0 || h.logLength % MiB !== 0 || h.logLength > MAX_LOG_LENGTH) {
    throw corrupt(`bad log length ${h.logLength}`, ctx);
  }
  if (!Number.isFinite(h.logOffset) || h.logOffset % MiB !== 0 || h.logOffset < MiB || h.logOffset > MAX_FILE_OFFSET) {
    throw corrupt(`bad log offset ${h.logOffset}`, ctx);
  }
}

/**
 * Header writer: keeps track of the current slot and writes updates to the non-current slot
 * (sequence + 1, flush), twice by default so both copies carry the new contents.
 */
export class HeaderState {
  current: Header;
  slot: 0 | 1;
  constructor(current: Header, slot: 0 | 1) {
    this.current = current;
    this.slot = slot;
  }
  async update(file: BlockFile, change: Partial<Header>, times = 2): Promise<void> {
    for (let i = 0; i < times; i++) {
      const next: Header = { ...this.current, ...change, sequenceNumber: this.current.sequenceNumber + 1n };
      const target: 0 | 1 = this.slot === 0 ? 1 : 0;
      await file.write(encodeHeader(next), target === 0 ? HEADER1_OFFSET : HEADER2_OFFSET);
      await file.flush();
      this.current = next;
      this.slot = target;
    }
  }
}
