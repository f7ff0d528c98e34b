// The VM hardware description the QEMU driver consumes: what the host layer's VM config
// is turned into before a start. Pure types; depends on nothing.

export type Generation = 1 | 2;
export type Accelerator = 'kvm' | 'tcg';

export interface CpuTopology { sockets: number; cores: number; threads: number }

export interface NumaSpec {
  /** Number of virtual NUMA nodes (≥ 1). CPUs and memory are split evenly, remainders to the last node. */
  count: number;
  /** Explicit memory per node in MiB (must sum to the startup memory); default: even split. */
  memoryMiBPerNode?: number[];
}

export interface NbdDiskSource {
  kind: 'nbd';
  /** Unix socket of the block server serving this disk. */
  socketPath: string;
  exportName: string;
}

export interface FileDiskSource {
  kind: 'file';
  path: string;
  /** Image format QEMU opens the file with. Default 'raw'. */
  format?: 'raw' | 'qcow2';
}

/** A DVD drive with its tray empty (media can be inserted later over QMP). */
export interface EmptyDiskSource { kind: 'empty' }

export interface DiskSpec {
  /** Stable id, used as QEMU node-name / device id (`[A-Za-z][A-Za-z0-9_-]*`). */
  id: string;
  bus: 'ide' | 'scsi' | 'virtio';
  media?: 'disk' | 'cdrom';
  source: NbdDiskSource | FileDiskSource | EmptyDiskSource;
  readOnly?: boolean;
  /** IDE: channel 0|1; SCSI: controller index (one virtio-scsi-pci per index). Ignored for virtio. */
  controllerNumber?: number;
  /** IDE: unit 0|1 on the channel; SCSI: target id. Ignored for virtio. */
  controllerLocation?: number;
  /** Firmware boot order (lower first). */
  bootIndex?: number;
  /** Sector sizes the guest sees (SCSI/virtio); default 512. A 4Kn disk needs 4096 logical. */
  logicalBlockSize?: 512 | 4096;
  physicalBlockSize?: 512 | 4096;
  /**
   * IDE/SCSI hard disk CHS geometry. Absent, QEMU guesses it by reading the disk's first sector
   * while it creates the device; a live migration's destination passes the source's (which it
   * reads with `diskGeometry`) because it may not read the disk before the source lets go.
   */
  geometry?: DiskGeometry;
}

export interface DiskGeometry { cyls: number; heads: number; secs: number }

export interface NicSpec {
  /** Stable id, used as QEMU netdev/device id. */
  id: string;
  /** `52:54:00:12:34:56` form. */
  mac: string;
  /** 'virtio' = synthetic adapter; 'legacy' = emulated e1000 (generation 1 only). */
  model: 'virtio' | 'legacy';
  /** The switch port's unix socket (must already be listening: QEMU 7.2 stream netdevs do not reconnect). */
  streamSocketPath: string;
  bootIndex?: number;
}

export interface FirmwareSpec {
  /** Read-only OVMF code image. */
  codePath: string;
  /** This VM's own writable copy of the variable store. */
  varsPath: string;
  secureBoot: boolean;
}

export interface KernelBoot {
  kernelPath: string;
  initrdPath?: string;
  append?: string;
}

/** Where this VM's sockets and files live on the host (all per VM). */
export interface QemuRuntimePaths {
  qmpSocket: string;
  serialSocket: string;
  serialLog: string;
  vncSocket: string;
  agentSocket: string;
  pidFile: string;
  /** The firmware's debug console (I/O port 0x402): SeaBIOS writes its boot messages there. */
  firmwareLog?: string;
}

export interface QemuVmSpec {
  generation: Generation;
  name: string;
  /** RFC 4122 text form; also how we recognise our QEMU process in /proc/<pid>/cmdline. */
  uuid: string;
  processorCount: number;
  /** Default: processorCount sockets × 1 core × 1 thread. Product must equal processorCount. */
  topology?: CpuTopology;
  numa?: NumaSpec;
  /** Startup memory in bytes (QEMU's -m, the balloon's range); must be a whole number of MiB. */
  memoryStartupBytes: number;
  /** Dynamic memory: virtio-mem devices beyond the startup memory (memory.ts plugs and unplugs them). */
  virtioMem?: VirtioMemSpec[];
  /**
   * Dynamic memory: a guest about to OOM takes pages back from the balloon instead of killing
   * (the host's next reading sees them). Off for static VMs: it is a device feature, and a
   * saved state from before it must restore into the same device.
   */
  balloonDeflateOnOom?: boolean;
  accelerator: Accelerator;
  /**
   * Bytes past the whole MiB of each boot RAM block. Default: command-line.ts's TCG pad under
   * TCG, none under KVM; a restore gives the layout its state file was saved with (state-ram-layout.ts).
   */
  ramPadBytes?: number;
  /** QEMU -cpu model. Default: 'host' under KVM, 'qemu64' under TCG. */
  cpuModel?: string;
  /** Required for generation 2, refused for generation 1. */
  firmware?: FirmwareSpec;
  kernelBoot?: KernelBoot;
  disks: DiskSpec[];
  /** SCSI controllers present even without disks (0..n-1), so disks can be hot-plugged. */
  scsiControllers?: number;
  nics: NicSpec[];
  /** Generation 1: a 1.44 MB floppy image in drive A (read-write, opened by QEMU). */
  floppy?: { path: string; bootIndex?: number };
  /** COM 2: a unix socket QEMU listens on (Hyper-V's named pipe). COM 1 is the console (paths.serialSocket). */
  com2SocketPath?: string;
  paths: QemuRuntimePaths;
}

/**
 * One virtio-mem device: a region of `sizeBytes` the guest sees as hot-pluggable, of which
 * `requestedBytes` is plugged at start. RAM reserves nothing until plugged; a file backend
 * (smart paging) is a shared mapping of that file, so what is plugged pages to it.
 */
export interface VirtioMemSpec {
  id: string;
  sizeBytes: number;
  requestedBytes: number;
  file?: string;
}

/** Per-start options that are not part of the VM's hardware. */
export interface QemuLaunchOptions {
  /** Start with vCPUs stopped (`-S`). */
  startPaused?: boolean;
  /** `-incoming` URI, e.g. from `restoreIncomingUri(file)` or 'defer'. */
  incoming?: string;
  /** The extra arguments carry devices with a bootindex (NICs on hubs): boot strictly by bootindex. */
  bootIndexedExtras?: boolean;
  /** Extra devices for tests/diagnostics (e.g. isa-debugcon), appended verbatim. */
  extraArgs?: string[];
  /**
   * The daemon runs as root: QEMU drops to this user once it has opened its files (`-runas`).
   * Sockets it connects to later must be open to that user's group (common/socket-group.ts).
   */
  runAs?: string;
}
