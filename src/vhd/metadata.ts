// The metadata region (2.6): a 64 KiB table of items followed by the item data. Parses the
// system items (file parameters, virtual disk size, page-83 id, sector sizes, parent
// locator), keeps every other item byte-for-byte, and re-encodes the whole region image so
// changes can be journaled sector by sector through the log.
import {
  METADATA_TABLE_SIZE, SIG_METADATA, MiB, KiB, MIN_BLOCK_SIZE, MAX_BLOCK_SIZE, MAX_VIRTUAL_SIZE,
  GUID_FILE_PARAMETERS, GUID_VIRTUAL_DISK_SIZE, GUID_PAGE83, GUID_LOGICAL_SECTOR, GUID_PHYSICAL_SECTOR,
  GUID_PARENT_LOCATOR, GUID_VHDX_PARENT_LOCATOR_TYPE,
  ascii, corrupt, isPow2, put16, put32, put64, putAscii, u16, u32, u64, utf16Decode, utf16Encode, invalidArg,
} from './format.ts';
import { readGuid, writeGuid } from './guid.ts';
import { VmhostError, type ErrorContext } from '../common/errors.ts';

export interface MetadataItem {
  guid: string;
  data: Uint8Array;
  isUser: boolean;
  isVirtualDisk: boolean;
  isRequired: boolean;
}

export interface ParentLocator {
  locatorType: string;
  entries: Map<string, string>;
}

export interface DiskParams {
  blockSize: number;
  leaveBlocksAllocated: boolean;
  hasParent: boolean;
  virtualSize: number;
  page83: string;
  logicalSectorSize: number;
  physicalSectorSize: number;
  parentLocator?: ParentLocator;
}

const MAX_ENTRIES = 2047;
const MAX_USER_ENTRIES = 1024;
const MAX_ITEM_LENGTH = 1 * MiB;

const SYSTEM_ITEMS = new Set([
  GUID_FILE_PARAMETERS, GUID_VIRTUAL_DISK_SIZE, GUID_PAGE83, GUID_LOGICAL_SECTOR, GUID_PHYSICAL_SECTOR, GUID_PARENT_LOCATOR,
]);

/** Parse the item table out of a metadata region image. */
export function decodeMetadataRegion(region: Uint8Array, ctx: ErrorContext): MetadataItem[] {
  if (region.length < METADATA_TABLE_SIZE) throw corrupt('metadata region smaller than its table', ctx);
  if (ascii(region, 0, 8) !== SIG_METADATA) throw corrupt('bad metadata table signature', ctx);
  const count = u16(region, 10);
  if (count > MAX_ENTRIES) throw corrupt(`metadata entry count ${count} too large`, ctx);
  const items: MetadataItem[] = [];
  const seen = new Set<string>();
  let userCount = 0;
  const spans: Array<[number, number]> = [];
  for (let i = 0; i < count; i++) {
    const o = 32 + i * 32;
    const guid = readGuid(region, o);
    const offset = u32(region, o + 16);
    const length = u32(region, o + 20);
    const flags = u32(region, o + 24);
    const isUser = (flags & 1) !== 0;
    const ictx = { ...ctx, item: guid };
    if (seen.has(`${guid}/${isUser}`)) throw corrupt(`metadata item ${guid} listed twice`, ictx);
    seen.add(`${guid}/${isUser}`);
    if (isUser && ++userCount > MAX_USER_ENTRIES) throw corrupt('too many user metadata items', ictx);
    if (length > MAX_ITEM_LENGTH) throw corrupt(`metadata item length ${length} too large`, ictx);
    if (length === 0) {
      if (offset !== 0) throw corrupt('zero-length metadata item with nonzero offset', ictx);
    } else {
      if (offset < METADATA_TABLE_SIZE || offset + length > region.length) {
        throw corrupt(`metadata item at ${offset}+${length} outside the region`, ictx);
      }
      for (const [s, e] of spans) if (offset < e && s < offset + length) throw corrupt('metadata items overlap', ictx);
      spans.push([offset, offset + length]);
    }
    items.push({
      guid,
      data: region.slice(offset, offset + length),
      isUser,
      isVirtualDisk: (flags & 2) !== 0,
      isRequired: (flags & 4) !== 0,
    });
  }
  return items;
}

/** Lay out items into a region image of `regionLength` bytes (table, then 4 KiB-aligned items). */
export function encodeMetadataRegion(items: MetadataItem[], regionLength: number): Uint8Array {
  if (items.length > MAX_ENTRIES) throw invalidArg('too many metadata items');
  const b = new Uint8Array(regionLength);
  putAscii(b, 0, SIG_METADATA);
  put16(b, 10, items.length);
  let next = METADATA_TABLE_SIZE;
  items.forEach((it, i) => {
    const o = 32 + i * 32;
    writeGuid(b, o, it.guid);
    let offset = 0;
    if (it.data.length > 0) {
      offset = next;
      next += Math.ceil(it.data.length / (4 * KiB)) * 4 * KiB;
      if (next > regionLength) throw new VmhostError('VHDX_TOO_LARGE', 'metadata items do not fit in the metadata region', { regionLength });
      b.set(it.data, offset);
    }
    put32(b, o + 16, offset);
    put32(b, o + 20, it.data.length);
    put32(b, o + 24, (it.isUser ? 1 : 0) | (it.isVirtualDisk ? 2 : 0) | (it.isRequired ? 4 : 0));
  });
  return b;
}

function find(items: MetadataItem[], guid: string): MetadataItem | undefined {
  return items.find((i) => !i.isUser && i.guid === guid);
}

/** Interpret the system items; throws VHDX_CORRUPT on anything missing or out of range. */
export function parseDiskParams(items: MetadataItem[], ctx: ErrorContext): DiskParams {
  for (const it of items) {
    if (!it.isUser && it.isRequired && !SYSTEM_ITEMS.has(it.guid)) {
      throw corrupt(`unknown required metadata item ${it.guid}`, { ...ctx, item: it.guid });
    }
  }
  const need = (guid: string, len: number, what: string): Uint8Array => {
    const it = find(items, guid);
    if (!it) throw corrupt(`metadata item ${what} missing`, { ...ctx, item: guid });
    if (it.data.length < len) throw corrupt(`metadata item ${what} too short`, { ...ctx, item: guid });
    return it.data;
  };
  const fp = need(GUID_FILE_PARAMETERS, 8, 'file parameters');
  const blockSize = u32(fp, 0);
  const flags = u32(fp, 4);
  if (!isPow2(blockSize) || blockSize < MIN_BLOCK_SIZE || blockSize > MAX_BLOCK_SIZE) {
    throw corrupt(`bad block size ${blockSize}`, { ...ctx, item: 'file parameters' });
  }
  const virtualSize = u64(need(GUID_VIRTUAL_DISK_SIZE, 8, 'virtual disk size'), 0);
  const logicalSectorSize = u32(need(GUID_LOGICAL_SECTOR, 4, 'logical sector size'), 0);
  const physicalSectorSize = u32(need(GUID_PHYSICAL_SECTOR, 4, 'physical sector size'), 0);
  const page83 = readGuid(need(GUID_PAGE83, 16, 'page 83 id'), 0);
  if (logicalSectorSize !== 512 && logicalSectorSize !== 4096) throw corrupt(`bad logical sector size ${logicalSectorSize}`, ctx);
  if (physicalSectorSize !== 512 && physicalSectorSize !== 4096) throw corrupt(`bad physical sector size ${physicalSectorSize}`, ctx);
  if (!Number.isFinite(virtualSize) || virtualSize === 0 || virtualSize % logicalSectorSize !== 0) {
    throw corrupt(`bad virtual disk size ${virtualSize}`, { ...ctx, item: 'virtual disk size' });
  }
  if (virtualSize > MAX_VIRTUAL_SIZE) {
    throw new VmhostError('VHDX_TOO_LARGE', `virtual disk size ${virtualSize} exceeds the 64 TB limit`, ctx);
  }
  const hasParent = (flags & 2) !== 0;
  const params: DiskParams = {
    blockSize, leaveBlocksAllocated: (flags & 1) !== 0, hasParent, virtualSize, page83, logicalSectorSize, physicalSectorSize,
  };
  if (hasParent) {
    const pl = find(items, GUID_PARENT_LOCATOR);
    if (!pl) throw corrupt('differencing disk without a parent locator', ctx);
    params.parentLocator = decodeParentLocator(pl.data, ctx);
  }
  return params;
}

export function decodeParentLocator(d: Uint8Array, ctx: ErrorContext): ParentLocator {
  const pctx = { ...ctx, item: 'parent locator' };
  if (d.length < 20) throw corrupt('parent locator too short', pctx);
  const locatorType = readGuid(d, 0);
  const count = u16(d, 18);
  if (20 + count * 12 > d.length) throw corrupt('parent locator entries exceed the item', pctx);
  const entries = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const o = 20 + i * 12;
    const ko = u32(d, o), vo = u32(d, o + 4), kl = u16(d, o + 8), vl = u16(d, o + 10);
    if (ko + kl > d.length || vo + vl > d.length || kl === 0 || vl === 0) throw corrupt('parent locator key/value out of range', pctx);
    const key = utf16Decode(d.subarray(ko, ko + kl));
    if (entries.has(key)) throw corrupt(`parent locator key ${key} repeated`, pctx);
    entries.set(key, utf16Decode(d.subarray(vo, vo + vl)));
  }
  if (locatorType === GUID_VHDX_PARENT_LOCATOR_TYPE && !entries.has('parent_linkage')) {
    throw corrupt('parent locator has no parent_linkage', pctx);
  }
  return { locatorType, entries };
}

export function encodeParentLocator(entries: Map<string, string>): Uint8Array {
  const kv = [...entries].map(([k, v]) => [utf16Encode(k), utf16Encode(v)] as const);
  let size = 20 + kv.length * 12;
  for (const [k, v] of kv) size += k.length + v.length;
  const d = new Uint8Array(size);
  writeGuid(d, 0, GUID_VHDX_PARENT_LOCATOR_TYPE);
  put16(d, 18, kv.length);
  let at = 20 + kv.length * 12;
  kv.forEach(([k, v], i) => {
    const o = 20 + i * 12;
    put32(d, o, at);
    d.set(k, at);
    at += k.length;
    put32(d, o + 4, at);
    d.set(v, at);
    at += v.length;
    put16(d, o + 8, k.length);
    put16(d, o + 10, v.length);
  });
  return d;
}

/** The system items for a new disk, in the order Hyper-V writes them. */
export function systemItems(p: DiskParams): MetadataItem[] {
  const fp = new Uint8Array(8);
  put32(fp, 0, p.blockSize);
  put32(fp, 4, (p.leaveBlocksAllocated ? 1 : 0) | (p.hasParent ? 2 : 0));
  const vs = new Uint8Array(8);
  put64(vs, 0, p.virtualSize);
  const id = new Uint8Array(16);
  writeGuid(id, 0, p.page83);
  const ls = new Uint8Array(4);
  put32(ls, 0, p.logicalSectorSize);
  const ps = new Uint8Array(4);
  put32(ps, 0, p.physicalSectorSize);
  const items: MetadataItem[] = [
    { guid: GUID_FILE_PARAMETERS, data: fp, isUser: false, isVirtualDisk: false, isRequired: true },
    { guid: GUID_VIRTUAL_DISK_SIZE, data: vs, isUser: false, isVirtualDisk: true, isRequired: true },
    { guid: GUID_PAGE83, data: id, isUser: false, isVirtualDisk: true, isRequired: true },
    { guid: GUID_LOGICAL_SECTOR, data: ls, isUser: false, isVirtualDisk: true, isRequired: true },
    { guid: GUID_PHYSICAL_SECTOR, data: ps, isUser: false, isVirtualDisk: true, isRequired: true },
  ];
  if (p.parentLocator) {
    items.push({ guid: GUID_PARENT_LOCATOR, data: encodeParentLocator(p.parentLocator.entries), isUser: false, isVirtualDisk: false, isRequired: true });
  }
  return items;
}

/** Replace the virtual-size item's value in an item list (resize). */
export function withVirtualSize(items: MetadataItem[], size: number): MetadataItem[] {
  return items.map((it) => {
    if (it.isUser || it.guid !== GUID_VIRTUAL_DISK_SIZE) return it;
    const d = new Uint8Array(8);
    put64(d, 0, size);
    return { ...it, data: d };
  });
}

export { MAX_VIRTUAL_SIZE };
