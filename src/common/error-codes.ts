// The one error table: every code a VmhostError may carry, each with its kind, and per kind the
// HTTP status the API answers, the exit code the CLI ends with and the errno an NBD client gets.
// `VmhostError.code` is typed as a key of ERROR_CODES, so tsc rejects an unregistered code; a new
// code is one line here. Pure; depends on nothing.

/** Process exit codes of the CLI (documented in `vmhost help`; scripts rely on them). */
export const ExitCode = {
  ok: 0,
  /** Anything not in the table, including errors that are not VmhostErrors. */
  failure: 1,
  /** The command line is wrong: unknown cmdlet or parameter, bad value, missing mandatory parameter. */
  usage: 2,
  notFound: 3,
  /** The object exists but cannot do that now (e.g. Start-VM on a running VM). */
  invalidState: 4,
  /** The daemon cannot be reached or refused us. */
  connection: 5,
  /** The daemon knows who we are, and our role (or a missing VMConnect grant) does not allow that (HTTP 403). */
  forbidden: 6,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** The errors an NBD server may send (the protocol's subset of Linux errnos); the numbers live in storage/nbd/protocol. */
export type NbdErrno = 'EPERM' | 'EIO' | 'EINVAL' | 'ENOSPC';

interface KindSpec { readonly http: number; readonly exit: ExitCode; readonly nbd: NbdErrno }

export const ERROR_KINDS = {
  /** The caller asked for something malformed or impossible. */
  'invalid-argument': { http: 400, exit: ExitCode.usage, nbd: 'EINVAL' },
  /** A size past a format's or a protocol's limit: on the wire, a write that does not fit. */
  'too-large': { http: 400, exit: ExitCode.usage, nbd: 'ENOSPC' },
  /** Well-formed, but this object cannot do it at all (a VHD cannot shrink, a raw disk cannot resize). */
  unsupported: { http: 400, exit: ExitCode.invalidState, nbd: 'EINVAL' },
  'not-found': { http: 404, exit: ExitCode.notFound, nbd: 'EIO' },
  /** The object exists, or is busy, or is in a state that forbids this now. */
  conflict: { http: 409, exit: ExitCode.invalidState, nbd: 'EIO' },
  'read-only': { http: 409, exit: ExitCode.invalidState, nbd: 'EPERM' },
  unauthorized: { http: 401, exit: ExitCode.connection, nbd: 'EPERM' },
  /** Signed in, but the caller's role (api/route-roles.ts) or VMConnect grants do not allow it. */
  forbidden: { http: 403, exit: ExitCode.forbidden, nbd: 'EPERM' },
  /** Too many failed sign-ins from one client or for one user (api/sign-in-throttle.ts). */
  throttled: { http: 429, exit: ExitCode.connection, nbd: 'EIO' },
  /** The CLI cannot reach the daemon (never sent by the daemon itself). */
  unreachable: { http: 503, exit: ExitCode.connection, nbd: 'EIO' },
  /** Something behind the daemon (a guest's agent) is not there to answer. */
  unavailable: { http: 503, exit: ExitCode.failure, nbd: 'EIO' },
  timeout: { http: 504, exit: ExitCode.failure, nbd: 'EIO' },
  'no-space': { http: 507, exit: ExitCode.failure, nbd: 'ENOSPC' },
  /** Failed on the host side: I/O, corrupt data, QEMU, a helper, a bug. */
  failure: { http: 500, exit: ExitCode.failure, nbd: 'EIO' },
} as const satisfies Record<string, KindSpec>;
export type ErrorKind = keyof typeof ERROR_KINDS;

export const ERROR_CODES = {
  // Generic codes of the daemon and the API.
  INVALID_ARGUMENT: 'invalid-argument',
  UNAUTHORIZED: 'unauthorized',
  FORBIDDEN: 'forbidden',
  TOO_MANY_SIGN_INS: 'throttled',
  NOT_FOUND: 'not-found',
  NOT_ATTACHED: 'not-found',
  ALREADY_EXISTS: 'conflict',
  INVALID_STATE: 'conflict',
  TIMEOUT: 'timeout',
  IO_ERROR: 'failure',
  INTERNAL: 'failure',
  DATA_DIR_IN_USE: 'conflict',
  RUNTIME_DIR_UNSAFE: 'failure',
  QEMU_USER_UNKNOWN: 'failure',
  // The HTTPS identity of a daemon listening off loopback (api/tls-certificate.ts).
  TLS_CERTIFICATE_INVALID: 'failure',
  TLS_CERTIFICATE_GENERATION_FAILED: 'failure',
  VM_STATE_TRANSITION: 'failure',
  /** Every address of the host's dynamic MAC pool (Set-VMHost -MacAddressMinimum/-MacAddressMaximum) is taken. */
  MAC_POOL_EXHAUSTED: 'conflict',
  // Measure-VM / Reset-VMResourceMetering on a VM whose metering is off (host/vm-metering.ts).
  METERING_NOT_ENABLED: 'conflict',
  // Resource pools (host/resource-pools.ts, vm-resource-pools.ts).
  RESOURCE_POOL_NOT_FOUND: 'not-found',
  RESOURCE_POOL_EXISTS: 'conflict',
  /** Remove-VMResourcePool of a pool that still has child pools or members. */
  RESOURCE_POOL_IN_USE: 'conflict',
  // VM configs across versions and hosts (host/config-version.ts, Import-VM).
  CONFIG_VERSION_UNSUPPORTED: 'unsupported',
  IMPORT_INCOMPATIBLE: 'conflict',
  // Move-VMStorage (host/vm-move-storage.ts): refused before anything is copied.
  MOVE_STORAGE_NO_SPACE: 'no-space',
  MOVE_STORAGE_UNSUPPORTED: 'unsupported',
  // Move-VM between hosts (host/vm-move-out.ts, move-destination.ts, vm-move-in.ts).
  MIGRATION_DISABLED: 'conflict',
  MIGRATION_NO_NETWORK: 'conflict',
  // The caller's credential for the destination (the web console's Move) was refused there: a bad value of ours to give, not our session's (a 401 would sign the console out).
  MIGRATION_CREDENTIAL_REFUSED: 'invalid-argument',
  MIGRATION_INCOMPATIBLE: 'conflict',
  MIGRATION_UNSUPPORTED: 'unsupported',
  MIGRATION_TICKET_INVALID: 'unauthorized',
  MIGRATION_DESTINATION_UNREACHABLE: 'unreachable',
  MIGRATION_FAILED: 'failure',
  MIGRATION_OUTCOME_UNKNOWN: 'failure',
  JOB_CANCELLED: 'conflict',
  // Failover clustering on etcd (src/cluster).
  /** No etcd member of --cluster-etcd-endpoints answered. */
  CLUSTER_ETCD_UNREACHABLE: 'unavailable',
  /** etcd answered with an error (no leader, a malformed request). */
  CLUSTER_ETCD_FAILED: 'failure',
  /** The daemon runs without --cluster-etcd-endpoints, or no cluster was created in its etcd. */
  CLUSTER_NOT_CONFIGURED: 'conflict',
  CLUSTER_EXISTS: 'conflict',
  /** A role's VM whose config is not in the cluster's shared folder, or a node not in the cluster. */
  CLUSTER_INVALID_OPERATION: 'conflict',
  /** No node that is Up and a possible owner can take the role. */
  CLUSTER_NO_OWNER: 'conflict',
  /** The owner node could not bring the role's VM online (Start-VM failed there). */
  CLUSTER_GROUP_FAILED: 'failure',
  /** A live move of a role (Move-ClusterVirtualMachineRole, a drain, a failback) did not happen; the owner said why. */
  CLUSTER_MOVE_FAILED: 'failure',
  /** Set-ClusterQuorum -NodeAndFileShareMajority: the directory names no etcd member that votes in this cluster, or another cluster holds it. */
  CLUSTER_WITNESS_INVALID: 'conflict',
  /** A Cluster Shared Volume's directory is not one every node reaches and may write (or is another volume's), or no such volume. */
  CLUSTER_CSV_INVALID: 'conflict',
  /** A metadata operation on a Cluster Shared Volume found no coordinator (none Up, or its failover outlasted the wait). */
  CLUSTER_CSV_NO_COORDINATOR: 'unavailable',
  /** Invoke-CauRun while another Cluster-Aware Updating run is in progress (one at a time). */
  CLUSTER_CAU_RUN_IN_PROGRESS: 'conflict',
  // Dynamic memory (host/memory-settings.ts, host/vm-memory.ts).
  /** A running VM's memory may only widen (MinimumBytes down, MaximumBytes up) and take a new Buffer or Priority. */
  MEMORY_CHANGE_NEEDS_OFF: 'conflict',
  /** The host cannot give a starting VM its startup memory, and no smart paging file could bridge it. */
  HOST_MEMORY_INSUFFICIENT: 'no-space',

  // CLI (src/cli): the binder, and the client's view of the daemon.
  CLI_INVALID_PARAMETER: 'invalid-argument',
  CLI_UNKNOWN_PARAMETER: 'invalid-argument',
  CLI_AMBIGUOUS_PARAMETER: 'invalid-argument',
  CLI_MISSING_PARAMETER: 'invalid-argument',
  CLI_PARAMETER_SET: 'invalid-argument',
  CLI_UNKNOWN_CMDLET: 'invalid-argument',
  CLI_INVALID_DEFINITION: 'failure',
  CONNECTION_FAILED: 'unreachable',
  AUTH_FAILED: 'unauthorized',
  // Remote hosts (cli/known-hosts.ts, cli/credentials.ts): refused before anything is sent.
  TLS_CERTIFICATE_CHANGED: 'unreachable',
  CREDENTIAL_REQUIRED: 'unreachable',
  INSECURE_TRANSPORT: 'unreachable',
  CREDENTIALS_FILE_UNSAFE: 'failure',
  CREDENTIALS_FILE_INVALID: 'failure',
  /** The daemon answered with a code this CLI does not know (a newer daemon). */
  DAEMON_ERROR: 'failure',
  VM_NOT_FOUND: 'not-found',

  // Guest integration services (src/guest, Copy-VMFile in src/host).
  AGENT_CLOSED: 'unavailable',
  AGENT_CONNECT_FAILED: 'unavailable',
  AGENT_DISCONNECTED: 'unavailable',
  AGENT_ERROR: 'failure',
  AGENT_NOT_READY: 'conflict',
  AGENT_REQUEST_TOO_LARGE: 'too-large',
  AGENT_SOURCE_CHANGED: 'conflict',
  AGENT_TIMEOUT: 'timeout',
  INTEGRATION_SERVICE_DISABLED: 'conflict',
  GUEST_DIRECTORY_NOT_FOUND: 'not-found',
  GUEST_FILE_EXISTS: 'conflict',
  GUEST_IO_ERROR: 'failure',
  GUEST_IMAGE_BUILD_FAILED: 'failure',

  // Host vNICs (src/host/tapd.ts: the helper's exit codes).
  HOST_NIC_FAILED: 'failure',
  HOST_NIC_HELPER_BUILD_FAILED: 'failure',
  HOST_NIC_NO_PERMISSION: 'failure',
  HOST_NIC_NO_TUN: 'failure',
  HOST_NIC_PORT_UNREACHABLE: 'failure',
  HOST_NIC_BUSY: 'conflict',

  // QEMU (src/qemu).
  QMP_ERROR: 'failure',
  QMP_TIMEOUT: 'timeout',
  QMP_DISCONNECTED: 'failure',
  QMP_CONNECT_FAILED: 'failure',
  QEMU_SPEC_INVALID: 'invalid-argument',
  QEMU_START_FAILED: 'failure',
  QEMU_ATTACH_FAILED: 'failure',
  QEMU_HOST_MISSING: 'failure',
  QEMU_STATE_FAILED: 'failure',

  // Packets, the virtual switch and network virtualization (src/packet, src/switch, src/hnv).
  PACKET_BAD_ADDRESS: 'invalid-argument',
  SWITCH_BAD_POLICY: 'invalid-argument',
  HNV_BAD_POLICY: 'invalid-argument',
  SWITCH_BAD_SETTINGS: 'invalid-argument',
  SWITCH_BAD_PORT_ID: 'invalid-argument',
  SWITCH_NO_SOCKET_PATH: 'invalid-argument',
  SWITCH_PORT_UPLINK: 'invalid-argument',
  SWITCH_NO_EXTENSION: 'not-found',
  SWITCH_NO_PORT: 'not-found',
  SWITCH_VETOED: 'conflict',
  SWITCH_FORWARDING_EXTENSION: 'conflict',
  SWITCH_EXTENSION_EXISTS: 'conflict',
  SWITCH_PORT_EXISTS: 'conflict',
  SWITCH_CAPTURE_ACTIVE: 'conflict',
  /** An adapter's UDP endpoint cannot be bound (in use, not a local address): the host's state, not a bug. */
  SWITCH_UPLINK: 'conflict',
  SWITCH_PORT_LISTEN: 'failure',
  SWITCH_CLOSED: 'failure',

  // Web console (src/web): its WebSocket bridges and static files.
  CONSOLE_UNAVAILABLE: 'unavailable',
  NOT_BUILT: 'unavailable',

  // Block server and I/O pipeline (src/storage).
  /** Backups (host/vm-backup.ts): restic failed, or refused the repository (wrong key, corrupt data). */
  BACKUP_REPOSITORY_FAILED: 'failure',
  /** No backup with that id (or of that VM) in the repository. */
  BACKUP_NOT_FOUND: 'not-found',
  /** A repository this host holds no key for (another host's, or its key file is gone). */
  BACKUP_NO_KEY: 'conflict',
  /** A point whose full point or an incremental before it is missing from the repository. */
  BACKUP_CHAIN_BROKEN: 'failure',
  /** A changed-blocks stream that does not parse or does not fit its header. */
  BACKUP_STREAM_INVALID: 'failure',
  // Hyper-V Replica (src/replica).
  /** This host is not a Replica server (Set-VMReplicationServer -ReplicationEnabled), or the VM has no replication. */
  REPLICATION_NOT_ENABLED: 'conflict',
  /** The peer's certificate does not chain to a trusted CA, or its name is not an allowed primary. */
  REPLICATION_UNAUTHORIZED: 'forbidden',
  /** A replication frame that does not parse or does not fit (replica/wire.ts). */
  REPLICATION_PROTOCOL: 'failure',
  /** The Replica server could not be reached, or a cycle failed on the way. */
  REPLICATION_FAILED: 'unreachable',
  /** The certificate named by a thumbprint is not in the replication certificate store. */
  REPLICATION_CERTIFICATE_NOT_FOUND: 'not-found',
  /** Start-VM of a Replica VM: it starts only after a failover. */
  REPLICATION_VM_IS_REPLICA: 'conflict',
  /** Kerberos authentication (it needs a domain). */
  REPLICATION_UNSUPPORTED: 'unsupported',
  /** Restore-VMBackup -NewVMName of a point that carries no VM configuration (taken before configs were stored). */
  BACKUP_NO_CONFIG: 'failure',
  /** A write to a disk whose ownership (fencing) token is stale or no longer known valid (storage/fencing.ts). */
  STORAGE_FENCED: 'read-only',
  STORAGE_INVALID_ARGUMENT: 'invalid-argument',
  STORAGE_UNKNOWN_FORMAT: 'invalid-argument',
  STORAGE_NOT_A_FILE: 'invalid-argument',
  STORAGE_UNSUPPORTED: 'unsupported',
  STORAGE_NO_SUCH_EXPORT: 'not-found',
  STORAGE_PARENT_NOT_FOUND: 'not-found',
  STORAGE_NO_SUCH_STAGE: 'not-found',
  STORAGE_DISK_IN_USE: 'conflict',
  STORAGE_EXPORT_EXISTS: 'conflict',
  STORAGE_SOCKET_IN_USE: 'conflict',
  STORAGE_STAGE_EXISTS: 'conflict',
  /** A live merge runs on the export: another swap (a checkpoint, a second merge) waits for it to end. */
  STORAGE_EXPORT_BUSY: 'conflict',
  /** A point-in-time copy or a mirror of the export runs (storage/point-in-time.ts, mirror.ts): no second one, no swap, merge or resize until it ends. */
  STORAGE_COPY_RUNNING: 'conflict',
  /** The point-in-time copy was cancelled, by its owner or because its export stopped. */
  STORAGE_COPY_CANCELLED: 'conflict',
  /** The point-in-time copy could not read the source or write the target (the guest's I/O went on unharmed). */
  STORAGE_COPY_FAILED: 'failure',
  /** A mirror (storage live migration, storage/mirror.ts) could not read the source, write the target or commit: the source is still served, the target discarded. */
  STORAGE_MIRROR_FAILED: 'failure',
  /** The mirror was cancelled before its switch, by its owner or because its export stopped. */
  STORAGE_MIRROR_CANCELLED: 'conflict',
  /** A disk stream to another host (storage/disk-stream.ts, a shared-nothing move's mirror target) failed, was refused or closed. */
  STORAGE_REMOTE_FAILED: 'failure',
  STORAGE_READ_ONLY: 'read-only',
  STORAGE_NO_SPACE: 'no-space',
  STORAGE_IO_ERROR: 'failure',
  STORAGE_LISTEN_FAILED: 'failure',
  /** A live merge stopped: the chain is whole and still served as it was. */
  STORAGE_MERGE_FAILED: 'failure',
  /** A live merge paused between chunks (its export stopping, or its owner asking): the chain is whole, the merge resumes from its files. */
  STORAGE_MERGE_PAUSED: 'conflict',
  /** flock(2) itself failed on a disk file (storage/file-lock.ts), not a holder's refusal. */
  STORAGE_LOCK_FAILED: 'failure',
  /** The change tracker's file could not be read or made durable (storage/change-tracking). */
  STORAGE_TRACKING_FAILED: 'failure',
  /** A change-tracking consumer that is not registered on the disk (its next copy is a full one). */
  STORAGE_TRACKING_NO_CONSUMER: 'not-found',
  /** A consumer took changes and has neither committed nor restored them. */
  STORAGE_TRACKING_BUSY: 'conflict',

  // VHDX engine (src/vhd).
  VHDX_INVALID_ARGUMENT: 'invalid-argument',
  VHDX_TOO_LARGE: 'too-large',
  VHDX_PARENT_NOT_FOUND: 'not-found',
  VHDX_PARENT_MISMATCH: 'conflict',
  VHDX_LOG_REPLAY_NEEDED: 'conflict',
  VHDX_READ_ONLY: 'read-only',
  VHDX_PARENT_REQUIRED: 'failure',
  VHDX_CHAIN_TOO_DEEP: 'failure',
  VHDX_CLOSED: 'failure',
  VHDX_CORRUPT: 'failure',

  // Legacy VHD engine (src/vhd/vhd1) and the disk file cmdlets (src/cli/cmdlets/vhd.ts).
  VHD_INVALID_ARGUMENT: 'invalid-argument',
  VHD_TOO_LARGE: 'too-large',
  VHD_UNSUPPORTED: 'unsupported',
  VHD_BELOW_MINIMUM_SIZE: 'unsupported',
  VHD_FILE_NOT_FOUND: 'not-found',
  VHD_METADATA_NOT_FOUND: 'not-found',
  VHD_PARENT_MISSING: 'not-found',
  VHD_FILE_EXISTS: 'conflict',
  /** A disk file another open holds (storage/file-lock.ts): a running VM, a host mount, another process. */
  VHD_IN_USE: 'conflict',
  VHD_PARENT_MISMATCH: 'conflict',
  VHD_READ_ONLY: 'read-only',
  VHD_CHAIN_TOO_DEEP: 'failure',
  VHD_CHAIN_CYCLE: 'failure',
  VHD_CLOSED: 'failure',
  VHD_CORRUPT: 'failure',
} as const satisfies Record<string, ErrorKind>;
export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(s: unknown): s is ErrorCode {
  return typeof s === 'string' && Object.hasOwn(ERROR_CODES, s);
}

export function httpStatusOf(code: ErrorCode): number {
  return ERROR_KINDS[ERROR_CODES[code]].http;
}

export function exitCodeOf(code: ErrorCode): ExitCode {
  return ERROR_KINDS[ERROR_CODES[code]].exit;
}

export function nbdErrnoOf(code: ErrorCode): NbdErrno {
  return ERROR_KINDS[ERROR_CODES[code]].nbd;
}
