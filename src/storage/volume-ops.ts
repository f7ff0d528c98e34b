// The metadata operations on disk files — creating a disk, the differencing child a checkpoint
// adds, resizing, deleting a file (a merged checkpoint's) — as one seam, so a cluster can decide who performs them. On a Cluster
// Shared Volume one node, the volume's coordinator, performs every metadata change and the
// others send theirs to it (src/cluster/csv-ops.ts); data I/O never passes here: the block
// server opens the files itself. Everything else uses `localVolumeOps`. An operation is plain
// data so that it can cross to another daemon as it is.
import { rm } from 'node:fs/promises';
import { createDifferencingFile, createDynamicDisk, createDiskFile, type NewDiskSpec } from './disk-create.ts';
import { resizeDiskFile } from './disk-change.ts';

export interface DifferencingSpec { format: 'VHDX' | 'VHD'; size?: number; blockSize?: number; logicalSectorSize?: number; physicalSectorSize?: 512 | 4096 }

export type VolumeOp =
  /** New-VHD -Fixed/-Dynamic. */
  | { Op: 'create'; Path: string; Spec: NewDiskSpec }
  /** New-VM -NewVHDPath: a dynamic disk named .vhdx or .vhd (its errors are New-VM's). */
  | { Op: 'createDynamic'; Path: string; SizeBytes: number }
  /** New-VHD -Differencing, and a checkpoint's new leaf; `ParentPath` absolute and real. */
  | { Op: 'createDifferencing'; Path: string; ParentPath: string; Spec: DifferencingSpec }
  /** Resize-VHD of a file nobody serves; the asker checked the size against the file's format. */
  | { Op: 'resize'; Path: string; SizeBytes: number | 'minimum' }
  /** A file created by a step that then failed; a checkpoint's file merged away. */
  | { Op: 'remove'; Path: string };

export interface VolumeOps {
  run(op: VolumeOp): Promise<void>;
}

/** The operation on this machine's filesystem, by this process. */
export async function runVolumeOpLocally(op: VolumeOp): Promise<void> {
  switch (op.Op) {
    case 'create': return createDiskFile(op.Path, op.Spec);
    case 'createDynamic': return createDynamicDisk(op.Path, op.SizeBytes);
    case 'createDifferencing': return createDifferencingFile(op.Path, op.ParentPath, op.Spec);
    case 'resize': return resizeDiskFile(op.Path, op.SizeBytes === 'minimum' ? { size: 'minimum' } : { size: op.SizeBytes, check: () => undefined });
    case 'remove': return rm(op.Path, { force: true });
  }
}

export const localVolumeOps: VolumeOps = { run: runVolumeOpLocally };

/** What a log line says the operation did. */
export function describeVolumeOp(op: VolumeOp): string {
  switch (op.Op) {
    case 'create': return `created ${op.Spec.type.toLowerCase()} disk ${op.Path}`;
    case 'createDynamic': return `created dynamic disk ${op.Path}`;
    case 'createDifferencing': return `created differencing disk ${op.Path} (parent ${op.ParentPath})`;
    case 'resize': return `resized ${op.Path} to ${op.SizeBytes === 'minimum' ? 'its minimum size' : `${op.SizeBytes} bytes`}`;
    case 'remove': return `deleted ${op.Path}`;
  }
}
