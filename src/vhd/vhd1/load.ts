// Reading a VHD's metadata from a BlockFile into memory, collecting every problem found.
// open.ts refuses a file with any "error" problem; check.ts returns the whole list. All
// sizes read from the file are validated against the file size before anything is
// allocated, so a hostile file cannot make us allocate more than the file itself holds.
import type { BlockFile } from '../../blockio/block-file.ts';
import { decodeFooter, FOOTER_SIZE, DiskTypeCode, sameId, type Footer } from './footer.ts';
import { decodeDynamicHeader, HEADER_SIZE, type DynamicHeader } from './dynamic-header.ts';
import { decodeBat, batBytes } from './bat.ts';
import { bitmapBytes } from './bitmap.ts';
import { decodeLocatorPath, LOCATOR_PREFERENCE, MAX_LOCATOR_BYTES, Platform, platformName } from './parent-locator.ts';
import { virtualSizeOf } from './geometry.ts';
import { MAX_VHD_SIZE, MIN_BLOCK_SIZE, MAX_BLOCK_SIZE, SECTOR, UNUSED, isPowerOfTwo, roundUp } from './units.ts';

export interface Problem {
  severity: 'error' | 'warning';
  /** Stable short code: FOOTER_CHECKSUM, HEADER_CHECKSUM, BAT_RANGE, BAT_OVERLAP, FOOTER_COPY … */
  code: string;
  structure: string;
  offset: number;
  message: string;
}

export interface LoadedVhd {
  footer: Footer;
  /** Where the trailing footer is (fixed: after the data; dynamic: after the last structure). */
  footerOffset: number;
  /** True when the trailing footer was unusable and the copy at offset 0 was used. */
  footerRecovered: boolean;
  header: DynamicHeader | null;
  bat: Uint32Array | null;
  /** First byte after every structure and block: where the next block goes. */
  dataEnd: number;
  /** Entries the table may hold without moving: up to the sector padding, stopping at the next structure. */
  tableCapacity: number;
  /** Parent paths from the locators, in resolver preference order, then the header's parent name. */
  parentPaths: string[];
  absoluteParentPath: string | null;
  fileSize: number;
}

export interface LoadResult {
  loaded: LoadedVhd | null;
  problems: Problem[];
}

async function readAt(file: BlockFile, offset: number, length: number): Promise<Uint8Array> {
  const b = new Uint8Array(length);
  await file.read(b, offset);
  return b;
}

export async function loadVhd(file: BlockFile): Promise<LoadResult> {
  const problems: Problem[] = [];
  const err = (code: string, structure: string, offset: number, message: string) =>
    problems.push({ severity: 'error', code, structure, offset, message });
  const warn = (code: string, structure: string, offset: number, message: string) =>
    problems.push({ severity: 'warning', code, structure, offset, message });
  const fail = (): LoadResult => ({ loaded: null, problems });

  const fileSize = await file.size();
  if (fileSize < FOOTER_SIZE) {
    err('FILE_TOO_SMALL', 'file', 0, `file is ${fileSize} bytes, smaller than a VHD footer`);
    return fail();
  }

  // Footer: the trailing one is authoritative; a dynamic disk's copy at offset 0 may stand in.
  // Old Virtual PC versions wrote a 511-byte footer; we look at the last 512 bytes only.
  const trailingOffset = Math.floor((fileSize - FOOTER_SIZE) / SECTOR) * SECTOR;
  const trailing = decodeFooter(await readAt(file, fileSize - FOOTER_SIZE, FOOTER_SIZE));
  const copy = fileSize >= 2 * FOOTER_SIZE ? decodeFooter(await readAt(file, 0, FOOTER_SIZE)) : null;
  let footer: Footer;
  let footerRecovered = false;
  if (trailing && trailing.checksumOk) {
    footer = trailing.footer;
  } else if (copy && copy.checksumOk && copy.footer.diskType !== DiskTypeCode.Fixed) {
    warn(trailing ? 'FOOTER_CHECKSUM' : 'FOOTER_MISSING', 'footer', fileSize - FOOTER_SIZE,
      trailing ? 'trailing footer checksum is wrong; using the copy at offset 0' : 'no footer at the end of the file; using the copy at offset 0');
    footer = copy.footer;
    footerRecovered = true;
  } else {
    if (trailing) err('FOOTER_CHECKSUM', 'footer', fileSize - FOOTER_SIZE, `footer checksum 0x${trailing.footer.checksum.toString(16)} is wrong`);
    else err('FOOTER_COOKIE', 'footer', fileSize - FOOTER_SIZE, 'no "conectix" footer at the end of the file: not a VHD');
    return fail();
  }

  if (footer.formatVersion >>> 16 !== 1) err('FOOTER_VERSION', 'footer', trailingOffset, `unsupported format version 0x${footer.formatVersion.toString(16)}`);
  const type = footer.diskType;
  if (type !== DiskTypeCode.Fixed && type !== DiskTypeCode.Dynamic && type !== DiskTypeCode.Differencing) {
    err('DISK_TYPE', 'footer', trailingOffset, `unsupported disk type ${type}`);
    return fail();
  }
  if (footer.currentSize % SECTOR !== 0 || footer.currentSize <= 0) {
    err('FOOTER_SIZE', 'footer', trailingOffset, `current size ${footer.currentSize} is not a positive multiple of 512`);
    return fail();
  }
  const virtualSize = virtualSizeOf(footer);
  if (virtualSize <= 0) {
    err('FOOTER_GEOMETRY', 'footer', trailingOffset, `CHS geometry ${footer.geometry.cylinders}/${footer.geometry.heads}/${footer.geometry.sectorsPerTrack} gives an empty disk`);
    return fail();
  }
  if (footer.currentSize > MAX_VHD_SIZE || virtualSize > MAX_VHD_SIZE) {
    err('TOO_LARGE', 'footer', trailingOffset, `disk size ${footer.currentSize} exceeds the VHD maximum of 2040 GiB`);
    return fail();
  }

  if (type === DiskTypeCode.Fixed) {
    if (footer.dataOffset !== null) warn('FOOTER_DATA_OFFSET', 'footer', trailingOffset, 'fixed disk has a data offset');
    if (fileSize - FOOTER_SIZE < footer.currentSize) {
      err('FIXED_TRUNCATED', 'footer', trailingOffset, `fixed disk of ${footer.currentSize} bytes is in a ${fileSize}-byte file`);
      return fail();
    }
    if (fileSize - FOOTER_SIZE > footer.currentSize) {
      warn('FIXED_SLACK', 'footer', trailingOffset, `${fileSize - FOOTER_SIZE - footer.currentSize} bytes between the data and the footer`);
    }
    const loaded: LoadedVhd = {
      footer, footerOffset: fileSize - FOOTER_SIZE, footerRecovered: false, header: null, bat: null, tableCapacity: 0,
      dataEnd: footer.currentSize, parentPaths: [], absoluteParentPath: null, fileSize,
    };
    return { loaded, problems };
  }

  // Dynamic / differencing: the copy at offset 0 must agree with the trailing footer.
  if (!footerRecovered) {
    if (!copy) err('FOOTER_COPY', 'footer copy', 0, 'dynamic disk has no footer copy at offset 0');
    else if (!copy.checksumOk) warn('FOOTER_COPY', 'footer copy', 0, 'footer copy at offset 0 has a wrong checksum');
    else if (copy.footer.currentSize !== footer.currentSize || !sameId(copy.footer.uniqueId, footer.uniqueId) || copy.footer.diskType !== footer.diskType) {
      warn('FOOTER_COPY', 'footer copy', 0, 'footer copy at offset 0 differs from the trailing footer');
    }
  }

  const hOff = footer.dataOffset;
  if (hOff === null || hOff % SECTOR !== 0 || hOff + HEADER_SIZE > fileSize) {
    err('HEADER_OFFSET', 'footer', trailingOffset, `dynamic header offset ${hOff} is outside the file`);
    return fail();
  }
  const decoded = decodeDynamicHeader(await readAt(file, hOff, HEADER_SIZE));
  if (!decoded) {
    err('HEADER_COOKIE', 'dynamic header', hOff, 'no "cxsparse" dynamic header');
    return fail();
  }
  const header = decoded.header;
  if (!decoded.checksumOk) err('HEADER_CHECKSUM', 'dynamic header', hOff, `header checksum 0x${header.checksum.toString(16)} is wrong`);
  if (header.headerVersion >>> 16 !== 1) err('HEADER_VERSION', 'dynamic header', hOff, `unsupported header version 0x${header.headerVersion.toString(16)}`);
  const bs = header.blockSize;
  if (!isPowerOfTwo(bs) || bs < MIN_BLOCK_SIZE || bs > MAX_BLOCK_SIZE) {
    err('BLOCK_SIZE', 'dynamic header', hOff + 32, `block size ${bs} is not a power of two between 512 B and 256 MiB`);
    return fail();
  }
  const needed = Math.ceil(Math.max(footer.currentSize, virtualSize) / bs);
  const entries = header.maxTableEntries;
  const tOff = header.tableOffset;
  if (entries < needed) {
    err('BAT_TOO_SMALL', 'dynamic header', hOff + 28, `${entries} BAT entries cannot map ${needed} blocks`);
    return fail();
  }
  if (tOff % SECTOR !== 0 || tOff < SECTOR || tOff + entries * 4 > fileSize) {
    err('BAT_OFFSET', 'dynamic header', hOff + 16, `BAT of ${entries} entries at ${tOff} does not fit in the ${fileSize}-byte file`);
    return fail();
  }
  const batRegion = batBytes(entries);
  const bat = decodeBat(await readAt(file, tOff, entries * 4), entries);

  // Every structure as [start, end) so that overlaps and the end of the data can be found.
  const spans: { start: number; end: number; what: string; offset: number }[] = [
    { start: 0, end: FOOTER_SIZE, what: 'footer copy', offset: 0 },
    { start: hOff, end: hOff + HEADER_SIZE, what: 'dynamic header', offset: hOff },
    // The table itself, unpadded: a writer may put the next structure right after it.
    { start: tOff, end: tOff + entries * 4, what: 'BAT', offset: tOff },
  ];

  // Parent locators.
  const isDiff = type === DiskTypeCode.Differencing;
  const byCode = new Map<number, string>();
  for (const [i, loc] of header.locators.entries()) {
    if (loc.platformCode === Platform.None) continue;
    const where = hOff + 576 + i * 24;
    const len = loc.platformDataLength, off = loc.platformDataOffset;
    if (len > MAX_LOCATOR_BYTES || off + len > fileSize || off < 0) {
      (isDiff ? err : warn)('LOCATOR_RANGE', `parent locator ${i} (${platformName(loc.platformCode)})`, where,
        `locator data of ${len} bytes at ${off} is outside the file`);
      continue;
    }
    // platformDataSpace is sectors per the spec but bytes as Windows writes it: only the data length is trusted.
    if (len > 0) spans.push({ start: off, end: roundUp(off + len, SECTOR), what: `parent locator ${i}`, offset: where });
    if (!isDiff || len === 0) continue;
    const path = decodeLocatorPath(loc, await readAt(file, off, len));
    if (path !== null && !byCode.has(loc.platformCode)) byCode.set(loc.platformCode, path);
  }
  const parentPaths: string[] = [];
  for (const c of LOCATOR_PREFERENCE) {
    const p = byCode.get(c);
    if (p !== undefined && !parentPaths.includes(p)) parentPaths.push(p);
  }
  if (isDiff && header.parentUnicodeName && !parentPaths.includes(header.parentUnicodeName)) parentPaths.push(header.parentUnicodeName);
  if (isDiff && parentPaths.length === 0) err('NO_PARENT_LOCATOR', 'dynamic header', hOff + 576, 'differencing disk names no parent');

  // Blocks: inside the file, sector aligned, not overlapping metadata or each other.
  const bmBytes = bitmapBytes(bs);
  const blockSpan = bmBytes + bs;
  const limit = footerRecovered ? fileSize : fileSize - FOOTER_SIZE;
  const blocks: { start: number; index: number }[] = [];
  let badBlocks = 0;
  for (let i = 0; i < entries; i++) {
    const e = bat[i]!;
    if (e === UNUSED) continue;
    const start = e * SECTOR;
    if (start + blockSpan > limit || start < SECTOR) {
      if (badBlocks++ < 16) err('BAT_RANGE', 'BAT', tOff + i * 4, `block ${i} at ${start} lies outside the file (${fileSize} bytes)`);
      continue;
    }
    blocks.push({ start, index: i });
  }
  blocks.sort((a, b) => a.start - b.start);
  let dataEnd = Math.max(...spans.map((s) => s.end));
  for (let j = 1; j < spans.length; j++) {
    for (let k = 0; k < j; k++) {
      const x = spans[j]!, y = spans[k]!;
      if (x.start < y.end && y.start < x.end) err('OVERLAP', x.what, x.offset, `${x.what} [${x.start}, ${x.end}) overlaps ${y.what} [${y.start}, ${y.end})`);
    }
  }
  let overlaps = 0;
  const metaSorted = [...spans].sort((a, b) => a.start - b.start);
  for (let k = 0; k < blocks.length; k++) {
    const b = blocks[k]!;
    const end = b.start + blockSpan;
    const prev = blocks[k - 1];
    if (prev && prev.start + blockSpan > b.start && overlaps++ < 16) {
      err('BAT_OVERLAP', 'BAT', tOff + b.index * 4, `block ${b.index} at ${b.start} overlaps block ${prev.index} at ${prev.start}`);
    }
    for (const m of metaSorted) {
      if (b.start < m.end && m.start < end && overlaps++ < 16) {
        err('BAT_OVERLAP', 'BAT', tOff + b.index * 4, `block ${b.index} at ${b.start} overlaps the ${m.what} at ${m.start}`);
      }
    }
    dataEnd = Math.max(dataEnd, end);
  }
  if (badBlocks > 16) err('BAT_RANGE', 'BAT', tOff, `${badBlocks - 16} more BAT entries out of range`);

  // Room to grow the table in place: its sector padding, unless something else starts there.
  let tableLimit = tOff + batRegion;
  for (const s of [...spans, ...blocks.map((b) => ({ start: b.start }))]) {
    if (s.start >= tOff + entries * 4 && s.start < tableLimit) tableLimit = s.start;
  }
  const tableCapacity = Math.max(entries, Math.floor((tableLimit - tOff) / 4));

  // The next block goes after everything, including the old footer position; after a
  // recovery also after any half-written garbage at the end of the file.
  dataEnd = roundUp(dataEnd, SECTOR);
  const footerOffset = footerRecovered ? Math.max(dataEnd, roundUp(fileSize, SECTOR)) : Math.max(dataEnd, fileSize - FOOTER_SIZE);
  const loaded: LoadedVhd = {
    footer, footerOffset, footerRecovered, header, bat, dataEnd: footerOffset, tableCapacity,
    parentPaths, absoluteParentPath: byCode.get(Platform.W2ku) ?? byCode.get(Platform.Wi2k) ?? byCode.get(Platform.MacX) ?? null,
    fileSize,
  };
  return { loaded, problems };
}
