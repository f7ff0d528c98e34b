// Public surface of the block server (storage/, layer 2): NBD exports of virtual disks over
// unix sockets, the I/O pipeline with metering and QoS, opening disk files by content.
export { BlockServer, type BlockServerOptions, type ServeOptions, type ServedDisk, type BlockServerEvents } from './block-server.ts';
export { openDiskFile, detectFormat, resizeDisk, locateParent, type OpenDiskOptions, type DetectedFormat } from './open-disk.ts';
export { RawDisk } from './raw-disk.ts';
export { HeldDisk, type HeldGeometry } from './held-disk.ts';
export { Pipeline, type Stage, type IoRequest, type IoResult, type IoKind, type Next } from './pipeline.ts';
export type { PointInTimeTarget, PointInTimeCopy } from './point-in-time.ts';
export type { RangesAtMoment } from './chunk-walker.ts';
export { ChangeTracker, TRACKING_BLOCK, type TakenChanges, type ChangedExtent, type ConsumerStatus } from './change-tracking/index.ts';
export type { Mirror, MirrorOptions, MirrorTarget } from './mirror.ts';
export { createFileTarget, createMirrorFile, type DiskShape } from './mirror-file.ts';
export { RemoteDisk, serveDiskStream, type DiskStreamServer, type DiskStreamSink } from './disk-stream.ts';
export type { DiskCounters } from './metering.ts';
export { LATENCY_BUCKETS_MS } from './metering.ts';
export type { QosLimits, MinimumIopsAlert } from './qos.ts';
export { NORMALIZED_IO_BYTES, normalizedIos } from './normalized.ts';
export { createDynamicDisk } from './disk-create.ts';
export { branchDiskFile } from './disk-branch.ts';
export { localVolumeOps, runVolumeOpLocally, describeVolumeOp, type VolumeOp, type VolumeOps, type DifferencingSpec } from './volume-ops.ts';
// The one path to disk files (CLI cmdlets and daemon alike): each file locked before it is read or written.
export { lockFd, inUse, type LockMode } from './file-lock.ts';
export { MAX_VIRTUAL_SIZE as MAX_VHDX_SIZE } from '../vhd/index.ts';
export { describeDiskFile, describeOpenDisk, testDiskFile, testOpenDisk, chainFiles, VHD_PROPERTIES, type VirtualHardDisk } from './disk-info.ts';
export { createDiskFile, createDifferencingFile, convertDiskFile, type NewDiskSpec, type ConvertSpec } from './disk-create.ts';
export {
  resizeDiskFile, mergeDiskFile, optimizeDiskFile, setDiskSectorSize, resetDiskIdentifier, setDiskParent, readDiskMetadata, writeDiskMetadata,
  type ResizeTarget, type MetadataItem, type WorkProgress,
} from './disk-change.ts';
export { copyDiskFile, sendFileData, type FileDataWrite } from './file-copy.ts';
// Fencing: writes of a clustered VM's disks only under a valid ownership token (src/cluster renews it).
export { FencingStage, OwnershipFence } from './fencing.ts';
