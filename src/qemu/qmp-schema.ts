// The QMP commands and events vmhost uses, as TypeScript types (QEMU 7.2 schema, qapi/*.json).
// Only what we call is listed: adding a command here is how it becomes callable with types.
// Pure types; depends on nothing.

export type RunState =
  | 'debug' | 'inmigrate' | 'internal-error' | 'io-error' | 'paused' | 'postmigrate'
  | 'prelaunch' | 'finish-migrate' | 'restore-vm' | 'running' | 'save-vm' | 'shutdown'
  | 'suspended' | 'watchdog' | 'guest-panicked' | 'colo';

export interface StatusInfo { running: boolean; singlestep: boolean; status: RunState }

export interface CpuInfoFast {
  'cpu-index': number;
  'qom-path': string;
  'thread-id': number;
  target: string;
  props?: { 'node-id'?: number; 'socket-id'?: number; 'core-id'?: number; 'thread-id'?: number };
}

export type MigrationStatus =
  | 'none' | 'setup' | 'cancelling' | 'cancelled' | 'active' | 'postcopy-active'
  | 'postcopy-paused' | 'postcopy-recover' | 'completed' | 'failed' | 'colo'
  | 'pre-switchover' | 'device' | 'wait-unplug';

export interface MigrationStats {
  transferred: number; remaining: number; total: number; duplicate: number;
  normal: number; 'normal-bytes': number; 'dirty-pages-rate': number; mbps: number;
  'dirty-sync-count': number; 'page-size': number;
}

export interface MigrationInfo {
  status?: MigrationStatus;
  ram?: MigrationStats;
  'total-time'?: number;
  'expected-downtime'?: number;
  /** Present while auto-converge throttles the guest's vCPUs. */
  'cpu-throttle-percentage'?: number;
  downtime?: number;
  'setup-time'?: number;
  'error-desc'?: string;
  /** Destination: where `migrate-incoming` listens (the port the kernel chose for port 0). */
  'socket-address'?: { type: string; host?: string; port?: string; path?: string }[];
}

export type MigrationCapabilityName =
  | 'xbzrle' | 'rdma-pin-all' | 'auto-converge' | 'zero-blocks' | 'compress' | 'events'
  | 'postcopy-ram' | 'x-colo' | 'release-ram' | 'block' | 'return-path' | 'pause-before-switchover'
  | 'multifd' | 'dirty-bitmaps' | 'postcopy-blocktime' | 'late-block-activate'
  | 'x-ignore-shared' | 'validate-uuid' | 'background-snapshot' | 'zero-copy-send' | 'postcopy-preempt';

export interface MigrationParameters {
  'max-bandwidth'?: number;
  'downtime-limit'?: number;
  'multifd-channels'?: number;
  'multifd-compression'?: 'none' | 'zlib' | 'zstd';
  'multifd-zlib-level'?: number;
  'multifd-zstd-level'?: number;
  'xbzrle-cache-size'?: number;
  'cpu-throttle-initial'?: number;
  'cpu-throttle-increment'?: number;
  'max-cpu-throttle'?: number;
  /** The tls-creds-x509 object's id; '' is plain. */
  'tls-creds'?: string;
  /** Source: the name the destination's certificate must carry. */
  'tls-hostname'?: string;
}

export interface BalloonInfo { actual: number }

/** query-memory-devices: the virtio-mem entries (DIMMs and others are not used by vmhost). */
export type MemoryDeviceInfo =
  | { type: 'virtio-mem'; data: { id?: string; memaddr: number; 'requested-size': number; size: number; 'max-size': number; 'block-size': number; node: number; memdev: string } }
  | { type: string; data: Record<string, unknown> };
export interface KvmInfo { enabled: boolean; present: boolean }
export interface VncInfo {
  enabled: boolean; host?: string; family?: string; service?: string; auth?: string;
  clients?: unknown[];
}

/** blockdev-add takes a large union; we pass the object through and type the fields we set. */
export interface BlockdevOptions {
  driver: string;
  'node-name': string;
  'read-only'?: boolean;
  [key: string]: unknown;
}

/** Map of command name → argument and return types. `args: undefined` means no arguments. */
export interface QmpCommands {
  qmp_capabilities: { args: { enable?: string[] } | undefined; ret: Record<string, never> };
  'query-status': { args: undefined; ret: StatusInfo };
  'query-kvm': { args: undefined; ret: KvmInfo };
  'query-name': { args: undefined; ret: { name?: string } };
  'query-uuid': { args: undefined; ret: { UUID: string } };
  'query-version': { args: undefined; ret: { qemu: { major: number; minor: number; micro: number }; package: string } };
  stop: { args: undefined; ret: Record<string, never> };
  cont: { args: undefined; ret: Record<string, never> };
  system_powerdown: { args: undefined; ret: Record<string, never> };
  system_reset: { args: undefined; ret: Record<string, never> };
  quit: { args: undefined; ret: Record<string, never> };
  'inject-nmi': { args: undefined; ret: Record<string, never> };
  'query-cpus-fast': { args: undefined; ret: CpuInfoFast[] };
  'query-balloon': { args: undefined; ret: BalloonInfo };
  balloon: { args: { value: number }; ret: Record<string, never> };
  'query-memory-devices': { args: undefined; ret: MemoryDeviceInfo[] };
  'query-memory-size-summary': { args: undefined; ret: { 'base-memory': number; 'plugged-memory'?: number } };
  migrate: { args: { uri: string; detach?: boolean; resume?: boolean }; ret: Record<string, never> };
  migrate_cancel: { args: undefined; ret: Record<string, never> };
  'migrate-incoming': { args: { uri: string }; ret: Record<string, never> };
  'migrate-set-capabilities': {
    args: { capabilities: { capability: MigrationCapabilityName; state: boolean }[] };
    ret: Record<string, never>;
  };
  'migrate-set-parameters': { args: MigrationParameters; ret: Record<string, never> };
  'query-migrate': { args: undefined; ret: MigrationInfo };
  'query-migrate-parameters': { args: undefined; ret: MigrationParameters };
  /** QEMU's yank instances; a migration's ('migration') is unregistered last when it is cleaned up. */
  'query-yank': { args: undefined; ret: { type: string }[] };
  'blockdev-add': { args: BlockdevOptions; ret: Record<string, never> };
  'blockdev-del': { args: { 'node-name': string }; ret: Record<string, never> };
  block_resize: { args: { 'node-name'?: string; device?: string; size: number }; ret: Record<string, never> };
  device_add: { args: { driver: string; id: string; [prop: string]: unknown }; ret: Record<string, never> };
  device_del: { args: { id: string }; ret: Record<string, never> };
  netdev_add: { args: { type: string; id: string; [prop: string]: unknown }; ret: Record<string, never> };
  netdev_del: { args: { id: string }; ret: Record<string, never> };
  screendump: { args: { filename: string; device?: string; head?: number; format?: 'ppm' | 'png' }; ret: Record<string, never> };
  'human-monitor-command': { args: { 'command-line': string; 'cpu-index'?: number }; ret: string };
  'query-vnc': { args: undefined; ret: VncInfo };
  'qom-get': { args: { path: string; property: string }; ret: unknown };
  'qom-set': { args: { path: string; property: string; value: unknown }; ret: Record<string, never> };
}

export type QmpCommandName = keyof QmpCommands;
export type QmpArgs<K extends QmpCommandName> = QmpCommands[K]['args'];
export type QmpReturn<K extends QmpCommandName> = QmpCommands[K]['ret'];

export type ShutdownCause =
  | 'none' | 'host-error' | 'host-qmp-quit' | 'host-qmp-system-reset' | 'host-signal'
  | 'host-ui' | 'guest-shutdown' | 'guest-reset' | 'guest-panic' | 'subsystem-reset' | 'snapshot-load';

/** Map of event name → `data` payload. */
export interface QmpEvents {
  SHUTDOWN: { guest: boolean; reason: ShutdownCause };
  POWERDOWN: undefined;
  RESET: { guest: boolean; reason: ShutdownCause };
  STOP: undefined;
  RESUME: undefined;
  SUSPEND: undefined;
  WAKEUP: undefined;
  MIGRATION: { status: MigrationStatus };
  MIGRATION_PASS: { pass: number };
  DEVICE_DELETED: { device?: string; path: string };
  BLOCK_IO_ERROR: { device: string; 'node-name'?: string; operation: 'read' | 'write'; action: 'ignore' | 'report' | 'stop'; nospace?: boolean; reason: string };
  BLOCK_JOB_COMPLETED: { type: string; device: string; len: number; offset: number; speed: number; error?: string };
  NETDEV_STREAM_CONNECTED: { 'netdev-id': string; addr: unknown };
  NETDEV_STREAM_DISCONNECTED: { 'netdev-id': string };
  NIC_RX_FILTER_CHANGED: { name?: string; path: string };
  BALLOON_CHANGE: { actual: number };
  GUEST_PANICKED: { action: string; info?: unknown };
  VNC_CONNECTED: { server: unknown; client: unknown };
  VNC_DISCONNECTED: { server: unknown; client: unknown };
  RTC_CHANGE: { offset: number; 'qom-path': string };
  WATCHDOG: { action: string };
}

export type QmpEventName = keyof QmpEvents;

/** One event as received: known events are typed, unknown ones pass through with `data: unknown`. */
export interface QmpEvent<N extends string = string> {
  event: N;
  data: N extends QmpEventName ? QmpEvents[N] : unknown;
  timestamp: { seconds: number; microseconds: number };
}
