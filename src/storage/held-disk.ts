// A disk served before its file may be opened: the destination of a live migration serves the
// VM's export (so its QEMU can connect at start) while the source host still holds the file
// writable. It answers the NBD handshake from the geometry the source reported and holds every
// request until `activate` hands it the opened file; the daemon then swaps the real disk in
// (BlockServer.swapDisk), so the held disk is only ever a doorway. Two writers on one VHDX
// corrupt it: nothing here touches the file.
// Depends on: src/blockio (VirtualDisk), src/common.
import type { DiskFormat, DiskType, Extent, VirtualDisk } from '../blockio/virtual-disk.ts';
import { VmhostError } from '../common/errors.ts';

export interface HeldGeometry { virtualSize: number; logicalSectorSize: number; physicalSectorSize: number }

export class HeldDisk implements VirtualDisk {
  readonly format: DiskFormat = 'RAW';
  readonly type: DiskType = 'Fixed';
  readonly readOnly = false;
  readonly virtualSize: number;
  readonly logicalSectorSize: number;
  readonly physicalSectorSize: number;
  #real: VirtualDisk | undefined;
  #gate: Promise<VirtualDisk>;
  #open!: (d: VirtualDisk) => void;
  #fail!: (e: Error) => void;

  constructor(g: HeldGeometry) {
    this.virtualSize = g.virtualSize;
    this.logicalSectorSize = g.logicalSectorSize;
    this.physicalSectorSize = g.physicalSectorSize;
    this.#gate = new Promise((ok, fail) => { this.#open = ok; this.#fail = fail; });
    this.#gate.catch(() => undefined); // observed by each held request
  }

  /** The file is ours now: held requests go on to it. It must look the same as the geometry promised. */
  activate(real: VirtualDisk): void {
    const differs = (['virtualSize', 'logicalSectorSize', 'physicalSectorSize', 'readOnly'] as const).filter((k) => real[k] !== this[k]);
    if (differs.length > 0) {
      throw new VmhostError('STORAGE_INVALID_ARGUMENT', `the disk opened differs from the one announced in ${differs.join(', ')}`, { op: 'activate-held', differs: differs.join(',') });
    }
    this.#real = real;
    this.#open(real);
  }

  private disk(): Promise<VirtualDisk> {
    return this.#real ? Promise.resolve(this.#real) : this.#gate;
  }

  async read(buf: Uint8Array, offset: number): Promise<void> { return (await this.disk()).read(buf, offset); }
  async write(buf: Uint8Array, offset: number): Promise<void> { return (await this.disk()).write(buf, offset); }
  async trim(offset: number, length: number): Promise<void> { return (await this.disk()).trim(offset, length); }
  async blockStatus(offset: number, length: number): Promise<Extent[]> { return (await this.disk()).blockStatus(offset, length); }
  /** Nothing was written before activation, so there is nothing to flush until then. */
  async flush(): Promise<void> { if (this.#real) await this.#real.flush(); }

  /** Held requests fail (the move was abandoned); an activated file belongs to whoever swapped it in. */
  async close(): Promise<void> {
    if (!this.#real) this.#fail(new VmhostError('STORAGE_NO_SUCH_EXPORT', 'the held disk was closed before its file was opened', { op: 'close-held' }));
  }
}
