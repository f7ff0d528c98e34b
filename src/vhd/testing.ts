// Helpers shared by the vhd tests (in-memory only; no node:fs here). Not exported from index.ts.
import { MemoryFile } from '../blockio/memory-file.ts';
import type { BlockFile } from '../blockio/block-file.ts';
import { createVhdx, type CreateOptions } from './create.ts';
import { openVhdx, type OpenOptions } from './open.ts';
import type { VhdxDisk } from './disk.ts';

export async function memDisk(opts: CreateOptions, name = 'mem.vhdx'): Promise<{ file: MemoryFile; disk: VhdxDisk }> {
  const file = new MemoryFile(name);
  await createVhdx(file, opts);
  const disk = await openVhdx(file);
  return { file, disk };
}

/** A reopenable view of a MemoryFile (open/close cycles keep the bytes). */
export function keepOpen(f: MemoryFile): BlockFile {
  return {
    name: f.name, readOnly: f.readOnly,
    read: (b, o) => f.read(b, o), write: (b, o) => f.write(b, o), flush: () => f.flush(),
    size: () => f.size(), truncate: (s) => f.truncate(s), close: async () => {},
  };
}

export async function reopen(f: MemoryFile, opts: OpenOptions = {}): Promise<VhdxDisk> {
  return openVhdx(keepOpen(f), opts);
}

export function pattern(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < len; i += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff; b[i + 1] = (x >>> 8) & 0xff; b[i + 2] = (x >>> 16) & 0xff; b[i + 3] = x >>> 24;
  }
  return b;
}
