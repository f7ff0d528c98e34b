// Creating a fixed, dynamic or differencing VHD in an (emptied) BlockFile.
// Layout of a dynamic/differencing disk: footer copy (0), dynamic header (512), BAT (1536,
// all unused, padded to a sector), parent locator data (differencing, one sector-padded
// area each), then the trailing footer — blocks are later allocated where the footer is.
// We write creator "win " (Hyper-V): every reader sizes such a disk by the footer's current
// size, so it is exactly the size asked for. A creator of our own ("vmhs") would be sized by
// CHS geometry by QEMU 7.2, which applies current size only to the creators it knows
// ("win ", "qem2", "d2v ", …) — measured in qemu-interop.test.ts.
import { randomBytes } from 'node:crypto';
import type { BlockFile } from '../../blockio/block-file.ts';
import type { VirtualDisk } from '../../blockio/virtual-disk.ts';
import { encodeFooter, DiskTypeCode, FEATURE_RESERVED, FORMAT_VERSION, FOOTER_SIZE, type Footer, type DiskTypeName } from './footer.ts';
import { encodeDynamicHeader, HEADER_SIZE, HEADER_VERSION, type LocatorEntry } from './dynamic-header.ts';
import { batBytes } from './bat.ts';
import { geometryForSize } from './geometry.ts';
import { Platform, encodeUtf16le, fileUrl, relativePath, baseName } from './parent-locator.ts';
import { invalidArgument, vhdError } from './errors.ts';
import { DEFAULT_BLOCK_SIZE, MAX_VHD_SIZE, SECTOR, isPowerOfTwo, roundUp, vhdTimeStamp } from './units.ts';

export const CREATOR_APP = 'win ';
const CREATOR_VERSION = 0x00060003; // as Hyper-V 2012 R2 writes it
const HOST_OS_WINDOWS = 0x5769326b; // "Wi2k": the host OS code every reader knows

export interface VhdParentSpec {
  /** The open parent, a VHD (as Hyper-V requires; open.ts refuses any other): its size, unique id and time stamp go into the child. */
  disk: VirtualDisk;
  /** Absolute path of the parent (W2ku and MacX locators). */
  path: string;
  /** Path of the parent relative to the child's directory (W2ru); computed from the child's file name when omitted. */
  relativePath?: string;
}

export interface CreateVhdOptions {
  type: DiskTypeName;
  /** Virtual size in bytes, a multiple of 512 up to 2040 GiB. Differencing disks take the parent's. */
  size?: number;
  /** Dynamic/differencing block size: a power of two from 4 KiB to 256 MiB (Hyper-V uses 512 KiB or 2 MiB). Default 2 MiB. */
  blockSize?: number;
  parent?: VhdParentSpec;
  /** Fixed values for reproducible tests. */
  uniqueId?: Uint8Array;
  timeStamp?: number;
}

export function checkVirtualSize(size: number, context: string): void {
  if (!Number.isSafeInteger(size) || size <= 0 || size % SECTOR !== 0) {
    throw invalidArgument(`${context}: size ${size} must be a positive multiple of 512 bytes`, { size });
  }
  if (size > MAX_VHD_SIZE) {
    throw vhdError('VHD_TOO_LARGE', `${context}: size ${size} exceeds the VHD maximum of 2040 GiB (${MAX_VHD_SIZE} bytes); use VHDX`, { size, max: MAX_VHD_SIZE });
  }
}

function newFooter(type: DiskTypeName, size: number, o: CreateVhdOptions): Footer {
  return {
    features: FEATURE_RESERVED,
    formatVersion: FORMAT_VERSION,
    dataOffset: type === 'Fixed' ? null : FOOTER_SIZE,
    timeStamp: o.timeStamp ?? vhdTimeStamp(),
    creatorApp: CREATOR_APP,
    creatorVersion: CREATOR_VERSION,
    creatorHostOs: HOST_OS_WINDOWS,
    originalSize: size,
    currentSize: size,
    geometry: geometryForSize(size),
    diskType: DiskTypeCode[type],
    checksum: 0,
    uniqueId: o.uniqueId ?? new Uint8Array(randomBytes(16)),
    savedState: 0,
  };
}

export async function createVhd(file: BlockFile, options: CreateVhdOptions): Promise<void> {
  const where = file.name;
  if (file.readOnly) throw vhdError('VHD_READ_ONLY', `${where}: cannot create on a read-only file`, { path: where });
  const type = options.type;
  if (!(type in DiskTypeCode)) throw invalidArgument(`${where}: unknown disk type ${String(type)}`, { path: where });
  if (type === 'Differencing' && !options.parent) throw invalidArgument(`${where}: a differencing disk needs a parent`, { path: where });
  if (type !== 'Differencing' && options.parent) throw invalidArgument(`${where}: only a differencing disk has a parent`, { path: where });
  const size = type === 'Differencing' ? options.parent!.disk.virtualSize : options.size;
  if (size === undefined) throw invalidArgument(`${where}: size is required`, { path: where });
  checkVirtualSize(size, where);
  if (type === 'Differencing' && options.parent!.disk.logicalSectorSize !== SECTOR) {
    throw invalidArgument(`${where}: a VHD child needs a parent with 512-byte sectors`, { path: where });
  }
  const footer = newFooter(type, size, options);
  await file.truncate(0);

  if (type === 'Fixed') {
    await file.truncate(size);
    await file.write(encodeFooter(footer), size);
    await file.flush();
    return;
  }

  const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
  if (!isPowerOfTwo(blockSize) || blockSize < 4096 || blockSize > 256 * 1024 * 1024) {
    throw invalidArgument(`${where}: block size ${blockSize} must be a power of two from 4 KiB to 256 MiB`, { path: where, blockSize });
  }
  const entries = Math.ceil(size / blockSize);
  const tableOffset = FOOTER_SIZE + HEADER_SIZE;
  let end = tableOffset + batBytes(entries);

  const locators: LocatorEntry[] = [];
  const locatorData: { offset: number; data: Uint8Array }[] = [];
  let parentUniqueId: Uint8Array = new Uint8Array(16);
  let parentTimeStamp = 0;
  let parentName = '';
  if (type === 'Differencing') {
    const p = options.parent!;
    const pd = p.disk as VirtualDisk & { uniqueId?: unknown; timeStamp?: unknown };
    if (pd.format !== 'VHD' || !(pd.uniqueId instanceof Uint8Array) || typeof pd.timeStamp !== 'number') {
      throw invalidArgument(`${where}: the parent of a VHD must be a VHD; ${p.path} is ${pd.format}`, { path: where, parent: p.path });
    }
    parentUniqueId = pd.uniqueId;
    parentTimeStamp = pd.timeStamp;
    parentName = baseName(p.path);
    const rel = p.relativePath ?? relativePath(file.name, p.path) ?? `./${parentName}`;
    const kinds: [number, Uint8Array][] = [
      [Platform.W2ru, encodeUtf16le(rel)],
      [Platform.W2ku, encodeUtf16le(p.path)],
      [Platform.MacX, new TextEncoder().encode(fileUrl(p.path))],
    ];
    for (const [code, data] of kinds) {
      const space = roundUp(Math.max(data.length, 1), SECTOR);
      // platformDataSpace in bytes, as Windows writes it (the spec's "sectors" is not what Windows reads).
      locators.push({ platformCode: code, platformDataSpace: space, platformDataLength: data.length, platformDataOffset: end });
      locatorData.push({ offset: end, data });
      end += space;
    }
  }

  const header = encodeDynamicHeader({
    tableOffset, headerVersion: HEADER_VERSION, maxTableEntries: entries, blockSize, checksum: 0,
    parentUniqueId, parentTimeStamp, parentUnicodeName: parentName, locators,
  });
  const footerBytes = encodeFooter(footer);
  await file.write(footerBytes, 0);
  await file.write(header, FOOTER_SIZE);
  await file.write(new Uint8Array(batBytes(entries)).fill(0xff), tableOffset);
  for (const l of locatorData) await file.write(l.data, l.offset);
  await file.write(footerBytes, end);
  await file.flush();
}
