// The QEMU driver's public surface (layer 3: imports only src/common and src/blockio).
export { QmpClient, type QmpConnectOptions, type QmpExecuteOptions, type QmpClientEvents } from './qmp-client.ts';
export type * from './qmp-schema.ts';
export { QemuErrorCode } from './error-codes.ts';
export type * from './vm-spec.ts';
export {
  buildQemuArgv, runtimePathsIn, numaLayout, optValue, diskNodeName, nicNetdevId, scsiControllerId, AGENT_PORT_NAME,
} from './command-line.ts';
export {
  QemuProcess, isPidAlive, isQemuOfVm,
  type QemuStartOptions, type QemuAttachOptions, type QemuExit, type QemuProcessEvents,
} from './qemu-process.ts';
export {
  probeAccelerator, probeAcceleratorDetailed, runAcceleratorProbe,
  type AcceleratorProbeResult, type AcceleratorProbeOptions,
} from './accel-probe.ts';
export {
  findQemuBinary, qemuVersion, findOvmf, ensureVarsFile, type QemuVersion, type OvmfFirmware,
} from './host-facts.ts';
export {
  saveStateToFile, waitForIncoming, restoreIncomingUri, checkStateFile, shellQuote, type WaitForIncomingOptions,
  type StateCompression, type SaveStateOptions, type SaveStateResult,
} from './save-state.ts';
export {
  startIncoming, migrateLive, type MigrationTuning, type LiveMigrationResult, type MigrateOptions,
} from './live-migration.ts';
export { hotplugScsiDisk, unplugDisk, refreshNbdDiskSize } from './hotplug.ts';
export { hubNicArgs, replugNicStream, type HubNic } from './hub-nic.ts';
export { changeDvdMedia, injectNmi } from './media.ts';
export {
  readMemory, setBalloonTarget, setVirtioMemRequested, pollBalloonStats, balloonStats, type MemoryReading, type BalloonStats,
} from './memory.ts';
export { VIRTIO_MEM_BLOCK } from './command-line.ts';
