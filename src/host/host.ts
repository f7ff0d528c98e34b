// The host: the registry of VMs persisted in the data dir, and every action on them. The
// API and CLI only translate requests into calls here; legality comes from vm-state.ts.
import { randomUUID } from 'node:crypto';
import { copyFile, cp, mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import { cpus, freemem, totalmem } from 'node:os';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { VmhostError, isVmhostError } from '../common/index.ts';
import type { TlsIdentity } from '../common/pinned-tls.ts';
import { writeFileAtomic, readJson } from './atomic-file.ts';
import { EventLog, type EventLevel } from './events.ts';
import { JobManager, type Job, type JobHandle } from './jobs.ts';
import { moveStorage, resumeMoveStorage, type MoveStorageHost, type MoveStorageParams } from './vm-move-storage.ts';
import {
  INTEGRATION_SERVICES, serviceEnabled, checkConfig, checkDynamicMemory, checkMemory, defaultDynamicMemory, checkName, checkNuma, checkProcessorCount, defaultIntegrationServices,
  type Generation, type IntegrationServiceName, type VmConfig,
} from './vm-config.ts';
import { invalid } from './invalid-argument.ts';
import { applyMemoryChange, hasMemoryChange, type MemoryChange } from './memory-settings.ts';
import { CONFIG_VERSION, upgradeConfig, type RawConfig } from './config-version.ts';
import { VmEntry } from './vm-entry.ts';
import { SerialLock, type LockHeld } from './vm-lock.ts';
import { clusteredVmPaths, vmPaths, type SavedInfo, type VmPaths } from './vm-paths.ts';
import { assertLegal, type VmAction, type VmState } from './vm-state.ts';
import { toView, type HeartbeatStatus, type ReplicationLook, type VmView } from './vm-view.ts';
import { VmRuntime, type ExitInfo, type RuntimeRecord } from './vm-runtime.ts';
import { readHostFacts, type HostFacts } from './host-facts.ts';
import { HostIdentity, type MacPoolChange } from './host-identity.ts';
import { colonMac, macPoolSize } from './mac-pool.ts';
import { VmStorage } from './vm-storage.ts';
import type { QemuUser } from './qemu-user.ts';
import { isPidAlive, isQemuOfVm } from '../qemu/index.ts';
import { shortSocketRoot } from './runtime-dir.ts';
import { VmDrives } from './vm-drives.ts';
import { VmCheckpoints, type SnapshotView } from './vm-checkpoints.ts';
import { VmMetering } from './vm-metering.ts';
import { ResourcePools } from './vm-resource-pools.ts';
import { VmMemory } from './vm-memory.ts';
import { VmNetwork } from './vm-network.ts';
import { HnvGateways } from './hnv-gateways.ts';
import { hnvMove } from './hnv-move.ts';
import { HnvStore } from './hnv-store.ts';
import type { NetAdapters } from './net-adapters.ts';
import { NetTeams } from './net-teams.ts';
import { VmFirmware } from './vm-firmware.ts';
import { VmControllers, floppyIsBootable } from './vm-controllers.ts';
import {
  DEFAULT_STARTUP_ORDER, FLOPPY_ID, bootIndexes, bootSource, hasBootSignature, startupOrderWithFirst,
  type BootDevice, type BootSourceKind,
} from './boot-order.ts';
import { chainFiles, type OwnershipFence } from '../storage/index.ts';
import { checkNewVmDevices } from './new-vm.ts';
import { FIRMWARE_MANIFEST, stateFiles } from './export-layout.ts';
import { chainOf, writeExport } from './vm-export.ts';
import { planImport, type ImportHostFacts, type ImportOptions, type VmCompatibilityReport } from './import-plan.ts';
import { executeImport } from './vm-import.ts';
import { liveLeafCopy } from './live-export.ts';
import { VmBackups, type RestoredDisk, type VmBackup } from './vm-backup.ts';
import { takeConsistentPoint, takeFilePoint, type ConsistentPoint, type PointOptions } from './consistent-point.ts';
import { newVmConfigFromBackup } from './backup-new-vm.ts';
import { decodeFirmwareVars, writeFirmwareVars } from './backup-firmware.ts';
import { atConsistentPoint, type FreezeResult } from './guest-freeze.ts';
import { checkCopyFile, copyToGuest, type CopyFileParams, type CopyFileResult } from './guest-file-copy.ts';
import {
  DEFAULT_MIGRATION_SETTINGS, applyMigrationSettings, loadMigrationSettings, saveMigrationSettings, type MigrationSettings,
} from './migration-settings.ts';
import { MoveQueue } from './move-queue.ts';
import { delegatedTicket } from './move-delegation.ts';
import type { DestinationTrust } from './move-destination.ts';
import { KnownHosts } from '../common/known-hosts.ts';
import {
  addNetwork, listenAddress, localAddresses, removeNetwork, selectNetworks, setNetwork, sourceAddress, type MigrationNetwork, type NetworkPolicy,
} from './migration-networks.ts';
import { TicketBook, type IssuedTicket } from './move-ticket.ts';
import { CLUSTER_TICKET_PREFIX, MoveIn, type ClusteredArrival, type MovePrepare, type PreparedMove } from './vm-move-in.ts';
import { MoveOut, type MoveRequest } from './vm-move-out.ts';

export interface NewVmParams {
  Name: string;
  Generation?: Generation;
  MemoryStartupBytes?: number;
  ProcessorCount?: number;
  Notes?: string;
  /** Create a dynamic disk here (absolute path on the host) and attach it: IDE 0:0 on generation 1, SCSI 0:0 on 2. */
  NewVHDPath?: string;
  NewVHDSizeBytes?: number;
  /** Attach this existing disk instead. */
  VHDPath?: string;
  /** Connect the VM's network adapter to this switch. */
  SwitchName?: string;
  BootDevice?: BootDevice;
}

export interface SetVmParams {
  NewVMName?: string;
  ProcessorCount?: number;
  MemoryStartupBytes?: number;
  /** Set-VMMemory -DynamicMemoryEnabled, Set-VM -DynamicMemory/-StaticMemory. */
  DynamicMemoryEnabled?: boolean;
  MemoryMinimumBytes?: number;
  MemoryMaximumBytes?: number;
  /** Set-VMMemory -Buffer (%) and -Priority. */
  MemoryBuffer?: number;
  MemoryPriority?: number;
  /** Set-VM -SmartPagingFilePath: the folder of the smart paging file (absolute). */
  SmartPagingFilePath?: string;
  NumaNodes?: number;
  Notes?: string;
  EnableSecureBoot?: boolean;
  /** Hyper-V's SnapshotFileLocation: where checkpoint records and memory go (absolute). */
  SnapshotFileLocation?: string;
}

/** vmhostd's options for the host (daemon.ts). */
export interface HostOptions {
  /** --memory-capacity: the memory this host hands out to running VMs (default: the machine's). */
  memoryCapacity?: number;
  /** The address the API listens on: a move's stream listener binds there too. */
  listenHost?: string;
  /** The daemon's TLS identity (api/tls-certificate.ts), which a move's stream listeners present; made on first use. */
  tlsIdentity?: () => Promise<TlsIdentity>;
}

export interface StopParams { TurnOff?: boolean; Force?: boolean; Save?: boolean }

export interface InvokeResult { stdout: Buffer; stderr: Buffer; exitCode: number }

export interface IntegrationServiceView {
  VMName: string;
  VMId: string;
  Name: IntegrationServiceName;
  Enabled: boolean;
  PrimaryStatusDescription: string;
  OperationalStatus: string;
}


const DEFAULT_MEMORY = 512 * 1024 * 1024;
const GRACEFUL_STOP_MS = 60_000;

export class Host {
  readonly events: EventLog;
  readonly jobs = new JobManager();
  readonly storage: VmStorage;
  readonly drives: VmDrives;
  readonly network: VmNetwork;
  readonly firmware: VmFirmware;
  readonly controllers: VmControllers;
  readonly checkpoints: VmCheckpoints;
  readonly metering: VmMetering;
  readonly pools: ResourcePools;
  /** Network virtualization policy (NetWNV cmdlets, hnv-store.ts), on every External switch (hnv-datapath.ts). */
  readonly hnv: HnvStore;
  /** The in-daemon multitenant gateway (New-/Get-/Remove-VmhostNetVirtualizationGateway, hnv-gateways.ts). */
  readonly hnvGateways: HnvGateways;
  readonly memory: VmMemory;
  private readonly backups: VmBackups;
  private replicationLook: (vmId: string) => ReplicationLook | undefined = () => undefined;
  /** A Replica VM's recovery points, which Get-VMSnapshot lists instead of checkpoints (src/replica). */
  private recoveryPoints: (vmId: string) => SnapshotView[] | undefined = () => undefined;
  private readonly vms = new Map<string, VmEntry>();
  /** New-VM and Rename: the name check and the registration happen under it, so names stay unique. */
  private readonly names = new SerialLock();
  private accelerator: 'kvm' | 'tcg' = 'tcg';
  private migration: MigrationSettings = DEFAULT_MIGRATION_SETTINGS;
  private migrationNetworks: MigrationNetwork[] = [];
  private readonly storageQueue = new MoveQueue(DEFAULT_MIGRATION_SETTINGS.MaximumStorageMigrations, 'storage migration');
  private readonly tickets = new TicketBook();
  readonly moveIn: MoveIn;
  private readonly moveOut: MoveOut;
  /** The daemons this host moves VMs to: their certificates pinned on first use in DIR/known_hosts. */
  private readonly moveTrust: DestinationTrust;
  private options: HostOptions = {};

  private constructor(readonly dataDir: string, events: EventLog, readonly facts: HostFacts, netAdapters: NetAdapters, teams: NetTeams,
    readonly qemuUser: QemuUser | undefined, private readonly identity: HostIdentity) {
    this.events = events;
    this.storage = new VmStorage(dataDir, qemuUser?.gid);
    this.backups = new VmBackups(dataDir, this.storage);
    this.drives = new VmDrives({
      resolve: (n) => this.resolve(n),
      entries: () => this.vms.values(),
      persist: (e) => this.persist(e),
      persistNext: (e, next) => this.persistNext(e, next),
      event: (level, code, message, e) => this.event(level, code, message, e),
      storage: this.storage,
      computerName: facts.computerName,
      qemuUser,
    });
    this.network = new VmNetwork({
      resolve: (n) => this.resolve(n),
      entries: () => this.vms.values(),
      persist: (e) => this.persist(e),
      event: (level, code, message, e) => this.event(level, code, message, e),
      kvp: (e) => (e.config.integrationServices['Key-Value Pair Exchange'] ? (e.runtime?.kvp() ?? {}) : {}),
      macPool: () => identity.macPool,
      computerName: facts.computerName,
    }, dataDir, netAdapters, teams, qemuUser?.gid);
    this.controllers = new VmControllers({
      resolve: (n) => this.resolve(n),
      persistNext: (e, next) => this.persistNext(e, next),
      event: (level, code, message, e) => this.event(level, code, message, e),
      computerName: facts.computerName,
    });
    this.firmware = new VmFirmware({
      resolve: (n) => this.resolve(n),
      persist: (e, next) => this.persistNext(e, next),
      event: (level, code, message, e) => this.event(level, code, message, e),
      computerName: facts.computerName,
    });
    this.checkpoints = new VmCheckpoints({
      storage: this.storage,
      computerName: facts.computerName,
      persistNext: (e, next) => this.persistNext(e, next),
      event: (level, code, message, e) => this.event(level, code, message, e),
      saveMemory: (rt, file, progress) => this.saveMemory(rt, file, progress),
      turnOff: (e, why, held) => this.turnOffLocked(e, why, held),
      adoptSavedState: (e, held, memory, uptimeMs, boot) => this.adoptSavedState(e, held, memory, uptimeMs, boot),
      dropSavedState: (e, held) => this.dropSavedState(e, held),
    });
    this.memory = new VmMemory({
      entries: () => this.vms.values(),
      capacityBytes: () => this.memoryCapacity(),
      reserveBytes: () => this.memoryReserve(),
      event: (level, code, message, e) => this.event(level, code, message, e),
    });
        this.metering = new VmMetering({ resolve: (n) => this.resolve(n), entries: () => this.vms.values(), storage: this.storage, network: this.network, computerName: facts.computerName, dataDir, logicalProcessors: facts.logicalProcessors });
    this.hnv = new HnvStore(dataDir);
    this.hnvGateways = new HnvGateways(dataDir, {
      policy: () => this.hnv.current(), switchNamed: (n) => this.network.registry.find(n), event: (level, code, message) => this.event(level, code, message),
    });
    this.pools = new ResourcePools({
      dataDir, computerName: facts.computerName, entries: () => this.vms.values(), resolve: (n) => this.resolve(n),
      hostMhz: () => this.metering.hostMhz, saveIntervalMs: () => this.metering.saveIntervalMs(),
      switches: () => this.network.switches.list().map((w) => ({ id: w.Id as string, name: w.Name as string })),
    });
    this.metering.onSample((seconds, sources) => this.pools.sample(seconds, sources));
    const hnvFollow = hnvMove(this.hnv, (level, code, message, e) => this.event(level, code, message, e));
    this.moveIn = new MoveIn({
      dataDir, storage: this.storage, network: this.network, qemuUser, socketRoot: shortSocketRoot(dataDir),
      listenHost: () => listenAddress(this.networkPolicy, localAddresses(), this.options.listenHost ?? '127.0.0.1'),
      tlsIdentity: () => {
        if (!this.options.tlsIdentity) throw new VmhostError('MIGRATION_UNSUPPORTED', 'this host has no TLS identity for migration streams', {});
        return this.options.tlsIdentity();
      },
      accelerator: () => this.accelerator,
      facts: () => this.importFacts(),
      migrationEnabled: () => this.migration.VirtualMachineMigrationEnabled,
      register: (e, rt, uptimeMs, boot) => this.registerMovedIn(e, rt, uptimeMs, boot),
      adoptMetering: (e) => this.metering.adoptMovedIn(e),
      hnv: hnvFollow,
      event: (level, code, message, e) => this.event(level, code, message, e),
    });
    this.moveTrust = {
      knownHosts: new KnownHosts(join(dataDir, 'known_hosts')),
      notice: (message) => this.event('Information', 'MIGRATION_HOST_PINNED', message),
    };
    this.moveOut = new MoveOut({
      trust: this.moveTrust,
      storage: this.storage, network: this.network, jobs: this.jobs, socketRoot: shortSocketRoot(dataDir), qemuGroup: qemuUser?.gid, qemuUser,
      computerName: facts.computerName,
      resolve: (n) => this.resolve(n),
      settings: () => this.migration,
      streamFrom: (address) => sourceAddress(this.networkPolicy, localAddresses(), address),
      checkpoints: this.checkpoints,
      live: (e) => this.live(e),
      settleExit: (e) => this.settleExit(e),
      forget: (e) => {
        this.vms.delete(e.config.id);
        this.checkpoints.forget(e);
        if (e.fence) this.storage.fenceDrives(e.config.hardDrives, undefined);
      },
      isRegistered: (e) => this.vms.has(e.config.id),
      metering: (e) => this.metering.carried(e),
      hnv: hnvFollow,
      event: (level, code, message, e) => this.event(level, code, message, e),
    });
    this.storage.onMinimumIops((a, restored) => {
      const owner = [...this.vms.values()].find((e) => e.config.hardDrives.some((d) => VmStorage.exportName(d) === a.exportName));
      const what = owner?.config.hardDrives.find((d) => VmStorage.exportName(d) === a.exportName)?.path ?? a.exportName;
      if (restored) this.event('Information', 'DISK_MINIMUM_IOPS_RESTORED', `Disk ${what} gets its minimum IOPS again`, owner);
      else this.event('Warning', 'DISK_MINIMUM_IOPS_NOT_MET', `Disk ${what} cannot get its MinimumIOPS ${a.minimumIops} (achieved ${Math.round(a.achievedIops)} normalized IOPS)`, owner);
    });
  }

  /**
   * `netAdapters`: the host's "physical" adapters (loadNetAdapters), which External switches bind to.
   * `qemuUser`: the user QEMU drops to (qemu-user.ts); its socket dirs must exist (ensurePrivateDir).
   */
  static async open(dataDir: string, netAdapters: NetAdapters, qemuUser?: QemuUser, options: HostOptions = {}): Promise<Host> {
    await mkdir(join(dataDir, 'vms'), { recursive: true });
    const host = new Host(dataDir, await EventLog.open(join(dataDir, 'events.jsonl')), await readHostFacts(), netAdapters, await NetTeams.load(dataDir, netAdapters),
      qemuUser, await HostIdentity.load(dataDir));
    host.options = options;
    host.accelerator = await VmRuntime.accelerator();
    ({ settings: host.migration, networks: host.migrationNetworks } = await loadMigrationSettings(dataDir));
    host.moveOut.queue.setLimit(host.migration.MaximumVirtualMachineMigrations);
    host.storageQueue.setLimit(host.migration.MaximumStorageMigrations);
    // Moves a killed daemon had staged never registered: their folders go before VMs load (switch ports follow in reconcile).
    await MoveIn.sweep(dataDir, (level, code, message) => host.event(level, code, message));
    // Switches listen again before VMs are re-attached: their NICs are re-plugged to them.
    await host.network.loadSwitches();
    await host.hnv.load();
    host.network.applyHnv(host.hnv.current());
    host.hnv.onChange((p) => { host.network.applyHnv(p); void host.hnvGateways.policyChanged(p); });
    host.network.onSwitchChange((name) => void host.hnvGateways.switchChanged(name));
    await host.hnvGateways.load();
    await host.load();
    await host.pools.load();
    await host.metering.start();
    host.memory.start();
    host.event('Information', 'HOST_STARTED', `Host started (accelerator ${host.accelerator}, ${host.vms.size} VMs)`);
    return host;
  }

  get acceleratorInUse(): 'kvm' | 'tcg' {
    return this.accelerator;
  }

  /** Stop watching VMs without touching them: they keep running for the next daemon. */
  async close(): Promise<void> {
    await this.memory.close();
    await this.metering.close();
    await this.pools.close();
    for (const e of this.vms.values()) e.runtime?.detach();
    // Disks stop being served; QEMU's NBD clients wait (reconnect-delay) for the next daemon.
    await this.storage.close();
    this.hnvGateways.close();
    await this.network.close();
    await this.events.settled();
  }

  // ---- registry ----------------------------------------------------------------------

  private async load(): Promise<void> {
    const root = join(this.dataDir, 'vms');
    const loaded: VmEntry[] = [];
    for (const id of await readdir(root)) {
      const paths = vmPaths(this.dataDir, id);
      let config: VmConfig;
      try {
        const read = upgradeConfig(await readJson<RawConfig>(paths.config), { snapshotDir: join(paths.dir, 'snapshots') }, `VM folder ${id}`);
        config = read.config;
        checkConfig(config, this.facts.logicalProcessors);
        if (read.from !== config.configVersion) {
          await writeFileAtomic(paths.config, JSON.stringify(config, null, 2) + '\n');
          this.event('Information', 'VM_CONFIG_UPGRADED', `VM '${config.name}': configuration upgraded from version ${read.from} to ${config.configVersion}`);
        }
      } catch (e) {
        this.event('Error', 'VM_CONFIG_UNREADABLE', `VM folder ${id} skipped: ${(e as Error).message}`);
        continue;
      }
      const entry = new VmEntry(config, paths);
      // Before anything of it is served: a Move-VM this daemon died committing is settled by the destination's answer.
      if (await this.moveOut.settleInterrupted(entry)) continue;
      this.vms.set(config.id, entry);
      await this.checkpoints.load(entry);
      // Before its disks are served again: a Move-VMStorage a crash interrupted is finished or undone.
      await resumeMoveStorage(entry, this.moveStorageHost).catch((err: unknown) =>
        this.event('Error', 'VM_MOVE_STORAGE_RECOVERY_FAILED', `Move-VMStorage recovery failed: ${(err as Error).message}`, entry));
      loaded.push(entry);
    }
    await this.network.reconcile(loaded);
    for (const entry of loaded) await this.recover(entry);
    for (const entry of loaded) this.resumeRemovals(entry);
  }

  /** After a daemon restart: re-attach to a QEMU that still runs, else work out Saved/Off. */
  private async recover(e: VmEntry): Promise<void> {
    const record = await readJson<RuntimeRecord>(e.paths.runtime).catch(() => undefined);
    if (record) {
      const rt = await VmRuntime.reattach(record, e.config, e.paths);
      if (rt) {
        // Serve its disks again at once: QEMU is retrying the NBD sockets (reconnect-delay).
        for (const d of e.config.hardDrives) {
          await this.storage.serveDrive(d).catch((err: unknown) => this.event('Error', 'DISK_SERVE_FAILED', `Disk ${d.path} could not be served again: ${(err as Error).message}`, e));
        }
        this.adopt(e, rt, record.uptimeBaseMs);
        e.runningSinceMs = record.startedAtMs;
        const status = await rt.status();
        await e.lock.run(async (held) => e.machine.transition(held, status === 'paused' ? 'Paused' : 'Running'));
        // Paused by a disk error while no daemon served its disks (or about to be): resume
        // once QEMU has reconnected, in the background so other VMs' disks are served meanwhile.
        if (status === 'io-error' || e.config.hardDrives.length > 0) void this.resumeAfterStorageOutage(e, rt);
        // QEMU 7.2 stream netdevs do not reconnect: point the NICs at the re-listening ports.
        const t0 = Date.now();
        const nics = await this.network.replugRunning(e).catch((err: unknown) => {
          this.event('Error', 'VM_NIC_REPLUG_FAILED', `Network adapters could not be re-plugged: ${(err as Error).message}`, e);
          return 0;
        });
        if (nics > 0) this.event('Information', 'VM_NIC_REPLUGGED', `${nics} network adapter(s) re-plugged to their switch ports in ${Date.now() - t0} ms`, e);
        this.event('Information', 'VM_REATTACHED', `Re-attached to running VM (QEMU pid ${rt.pid})`, e);
        return;
      }
      await rm(e.paths.runtime, { force: true });
      e.lastExitReason = `QEMU process ${record.pid} exited while the daemon was not running`;
      this.event('Warning', 'VM_EXITED', `VM turned off: ${e.lastExitReason}`, e);
    }
    const saved = await readJson<SavedInfo>(`${e.paths.savedState}.json`).catch(() => undefined);
    if (saved && (await exists(e.paths.savedState))) {
      await e.lock.run(async (held) => e.machine.transition(held, 'Saved'));
      e.uptimeBaseMs = saved.uptimeMs;
      e.bootSource = saved.boot;
    }
  }

  private resolve(nameOrId: string): VmEntry {
    const byId = this.vms.get(nameOrId);
    if (byId) return byId;
    const lower = nameOrId.toLowerCase();
    for (const e of this.vms.values()) if (e.config.name.toLowerCase() === lower) return e;
    throw new VmhostError('NOT_FOUND', `Hyper-V was unable to find a virtual machine with name or id '${nameOrId}'`, { vm: nameOrId });
  }

  list(): VmView[] {
    return [...this.vms.values()]
      .sort((a, b) => a.config.name.localeCompare(b.config.name))
      .map((e) => this.view(e));
  }

  get(nameOrId: string): VmView {
    return this.view(this.resolve(nameOrId));
  }

  private view(e: VmEntry): VmView {
    const rt = e.runtime;
    let heartbeat: HeartbeatStatus = 'NoContact';
    if (!e.config.integrationServices.Heartbeat) heartbeat = 'Disabled';
    else if (e.state === 'Paused') heartbeat = 'Paused';
    else if (rt) heartbeat = rt.heartbeat();
    return toView(e.config, {
      state: e.state,
      heartbeat,
      cpuUsage: rt?.cpuUsagePercent(this.facts.logicalProcessors) ?? 0,
      uptimeMs: e.uptimeBaseMs + (e.runningSinceMs !== undefined ? Date.now() - e.runningSinceMs : 0),
      kvp: e.config.integrationServices['Key-Value Pair Exchange'] ? (rt?.kvp() ?? {}) : {},
      path: e.paths.dir,
      computerName: this.facts.computerName,
      pid: rt?.pid,
      lastExitReason: e.lastExitReason,
      bootSource: e.bootSource ?? bootSource(e.config, (id) => e.bootableDrives.get(id) ?? true),
      bootFailure: e.bootFailure,
      parentSnapshotName: this.checkpoints.parentName(e),
      resourceMeteringEnabled: this.metering.isEnabled(e.config.id),
      memory: this.memory.of(e),
      clustered: e.fence !== undefined,
      replication: this.replicationLook(e.config.id),
    });
  }

  /** New-VM. Under the names lock: of two requests for one name, the second sees the first's VM. */
  create(p: NewVmParams): Promise<VmView> {
    return this.names.run(() => this.createNamed(p));
  }

  private async createNamed(p: NewVmParams): Promise<VmView> {
    checkName(p.Name);
    const generation = p.Generation ?? 1;
    if (generation !== 1 && generation !== 2) throw invalid('Generation', `${String(generation)} is not 1 or 2`);
    const memory = p.MemoryStartupBytes ?? DEFAULT_MEMORY;
    checkMemory(memory);
    const processors = p.ProcessorCount ?? 1;
    checkProcessorCount(processors, this.facts.logicalProcessors);
    checkNewVmDevices(p, generation);
    this.assertNameFree(p.Name);
    // Refuse a missing switch before anything is created.
    if (p.SwitchName !== undefined) this.network.switches.get(p.SwitchName);
    if (p.VHDPath !== undefined) await VmStorage.probe(p.VHDPath, 'VHDPath');
    const id = randomUUID();
    const config: VmConfig = {
      id,
      name: p.Name,
      generation,
      processorCount: processors,
      memoryStartupBytes: memory,
      dynamicMemory: defaultDynamicMemory(memory),
      smartPagingFilePath: null,
      numaNodes: 1,
      // Generation 2 VMs get secure boot on by default, as in Hyper-V.
      secureBoot: generation === 2,
      notes: p.Notes ?? '',
      boot: { kind: 'TestGuest' },
      bios: { startupOrder: [...DEFAULT_STARTUP_ORDER], numLockEnabled: false },
      bootOrder: [],
      scsiControllers: 1,
      floppyPath: null,
      com2Path: null,
      parentSnapshotId: null,
      snapshotFileLocation: join(vmPaths(this.dataDir, id).dir, 'snapshots'),
      integrationServices: defaultIntegrationServices(),
      hardDrives: [],
      dvdDrives: [],
      networkAdapters: [],
      createdAt: new Date().toISOString(),
      configVersion: CONFIG_VERSION,
    };
    const entry = new VmEntry(config, vmPaths(this.dataDir, config.id));
    await mkdir(entry.paths.dir, { recursive: true });
    await this.persist(entry);
    this.vms.set(config.id, entry);
    let createdDisk: string | undefined;
    try {
      await this.addNewVmDevices(entry, p, (path) => { createdDisk = path; });
    } catch (err) {
      // New-VM is all or nothing: no half VM, no new disk file left behind.
      await this.network.forgetVm(entry).catch(() => undefined);
      await rm(entry.paths.dir, { recursive: true, force: true });
      this.vms.delete(config.id);
      if (createdDisk) await this.storage.volumeOps.run({ Op: 'remove', Path: createdDisk }).catch(() => undefined);
      throw err;
    }
    const disk = entry.config.hardDrives[0];
    this.event('Information', 'VM_CREATED', `VM created (generation ${generation}, ${processors} vCPU, ${memory / 1048576} MB${disk ? `, disk ${disk.path}` : ''}${p.SwitchName ? `, switch '${p.SwitchName}'` : ''})`, entry);
    return this.view(entry);
  }

  /** New-VM's devices, as Hyper-V adds them: the disk, one network adapter ("Network Adapter"), a DVD drive for -BootDevice CD, then the boot order. */
  private async addNewVmDevices(e: VmEntry, p: NewVmParams, created: (path: string) => void): Promise<void> {
    const gen = e.config.generation;
    if (p.NewVHDPath !== undefined) {
      await this.storage.volumeOps.run({ Op: 'createDynamic', Path: p.NewVHDPath, SizeBytes: p.NewVHDSizeBytes! });
      created(p.NewVHDPath);
    }
    const diskPath = p.NewVHDPath ?? p.VHDPath;
    if (diskPath !== undefined) {
      await this.drives.addHard(e.config.id, { Path: diskPath, ControllerType: gen === 1 ? 'IDE' : 'SCSI', ControllerNumber: 0, ControllerLocation: 0 });
    }
    const legacy = gen === 1 && (p.BootDevice === 'LegacyNetworkAdapter' || p.BootDevice === 'NetworkAdapter');
    await this.network.addAdapter(e.config.id, { SwitchName: p.SwitchName, IsLegacy: legacy });
    if (p.BootDevice === 'CD') await this.drives.addDvd(e.config.id, {});
    if (p.BootDevice === undefined) return;
    if (gen === 1) {
      const cls = p.BootDevice === 'VHD' ? 'IDE' : p.BootDevice === 'NetworkAdapter' ? 'LegacyNetworkAdapter' : p.BootDevice;
      await this.persistNext(e, { ...e.config, bios: { ...e.config.bios, startupOrder: startupOrderWithFirst(e.config.bios.startupOrder, cls) } });
      return;
    }
    const first = p.BootDevice === 'CD' ? e.config.dvdDrives[0]!.id : p.BootDevice === 'VHD' ? e.config.hardDrives[0]!.id : e.config.networkAdapters[0]!.id;
    await this.firmware.setFirmware(e.config.id, { FirstBootDevice: first });
  }
  private assertNameFree(name: string, except?: string): void {
    for (const e of this.vms.values()) {
      if (e.config.id !== except && e.config.name.toLowerCase() === name.toLowerCase()) {
        throw new VmhostError('ALREADY_EXISTS', `A virtual machine named '${name}' already exists (Id ${e.config.id})`, { vm: name });
      }
    }
  }

  private async persist(e: VmEntry): Promise<void> {
    await writeFileAtomic(e.paths.config, JSON.stringify(e.config, null, 2) + '\n');
  }

  /** Save a changed config first, then make it the VM's: a failed write leaves memory and disk agreeing. */
  private async persistNext(e: VmEntry, next: VmConfig): Promise<void> {
    await writeFileAtomic(e.paths.config, JSON.stringify(next, null, 2) + '\n');
    e.config = next;
  }

  async set(nameOrId: string, p: SetVmParams): Promise<VmView> {
    const e = this.resolve(nameOrId);
    // A rename takes the names lock (before the VM's, as New-VM does) so two VMs cannot end up with one name.
    const named = <T>(fn: () => Promise<T>) => (p.NewVMName !== undefined ? this.names.run(fn) : fn());
    return named(() => e.lock.run(async () => {
      const next: VmConfig = structuredClone(e.config);
      const hardware = p.ProcessorCount !== undefined || p.NumaNodes !== undefined || p.EnableSecureBoot !== undefined;
      if (hardware) assertLegal('SetHardware', e.state, e.config.name);
      const memory: MemoryChange = {
        StartupBytes: p.MemoryStartupBytes, DynamicMemoryEnabled: p.DynamicMemoryEnabled, MinimumBytes: p.MemoryMinimumBytes,
        MaximumBytes: p.MemoryMaximumBytes, Buffer: p.MemoryBuffer, Priority: p.MemoryPriority,
      };
      // A running VM takes the widening changes (memory-settings.ts); a saved one none.
      const running = e.state === 'Running' || e.state === 'Paused';
      if (hasMemoryChange(memory) && !running) assertLegal('SetHardware', e.state, e.config.name);
      if (p.NewVMName !== undefined) {
        checkName(p.NewVMName);
        this.assertNameFree(p.NewVMName, e.config.id);
        next.name = p.NewVMName;
      }
      if (p.ProcessorCount !== undefined) {
        checkProcessorCount(p.ProcessorCount, this.facts.logicalProcessors);
        next.processorCount = p.ProcessorCount;
      }
      if (p.NumaNodes !== undefined) next.numaNodes = p.NumaNodes;
      if (hasMemoryChange(memory)) Object.assign(next, applyMemoryChange(next, memory, running));
      if (p.SmartPagingFilePath !== undefined) next.smartPagingFilePath = await this.folderParam(e, 'SmartPagingFilePath', p.SmartPagingFilePath);
      if (p.EnableSecureBoot !== undefined) {
        if (next.generation !== 2) throw invalid('EnableSecureBoot', 'secure boot exists only on generation 2 VMs', e.config.name);
        next.secureBoot = p.EnableSecureBoot;
      }
      if (p.Notes !== undefined) next.notes = p.Notes;
      if (p.SnapshotFileLocation !== undefined) next.snapshotFileLocation = await this.snapshotLocation(e, p.SnapshotFileLocation);
      checkNuma(next.numaNodes, next.processorCount, next.memoryStartupBytes);
      checkDynamicMemory(next.dynamicMemory, next.memoryStartupBytes, next.numaNodes, next.name);
      e.config = next;
      await this.persist(e);
      this.event('Information', 'VM_CONFIGURED', `VM settings changed: ${Object.keys(p).join(', ')}`, e);
      return this.view(e);
    }));
  }

  /**
   * A new SnapshotFileLocation: an absolute folder, created if missing. Refused while the VM
   * has checkpoints (as Hyper-V Manager greys it out then): their records would stay behind.
   */
  private async snapshotLocation(e: VmEntry, path: string): Promise<string> {
    if (!isAbsolute(path)) throw invalid('SnapshotFileLocation', `must be an absolute path, not '${path}'`, e.config.name);
    const n = this.checkpoints.list(e).length;
    if (n > 0 && resolve(path) !== resolve(e.config.snapshotFileLocation)) {
      throw new VmhostError('INVALID_STATE', `VM '${e.config.name}' has ${n} checkpoint(s): remove them before moving its checkpoint file location`, { vm: e.config.name, parameter: 'SnapshotFileLocation' });
    }
    return this.folderParam(e, 'SnapshotFileLocation', path);
  }

  /** A folder parameter: absolute, created if missing. */
  private async folderParam(e: VmEntry, param: string, path: string): Promise<string> {
    if (!isAbsolute(path)) throw invalid(param, `must be an absolute path, not '${path}'`, e.config.name);
    await mkdir(path, { recursive: true }).catch((err: unknown) => {
      throw invalid(param, `cannot create ${path}: ${(err as Error).message}`, e.config.name);
    });
    return resolve(path);
  }

  async remove(nameOrId: string, force = false): Promise<void> {
    const e = this.resolve(nameOrId);
    if (e.fence) throw new VmhostError('CLUSTER_INVALID_OPERATION', `VM '${e.config.name}' is a clustered role: remove the role first (Remove-ClusterGroup)`, { vm: e.config.name });
    await e.lock.run(async (held) => {
      if (force && e.state !== 'Off' && e.state !== 'Saved') await this.turnOffLocked(e, 'removed with -Force', held);
      assertLegal('Remove', e.state, e.config.name);
      await this.network.forgetVm(e);
      // Hyper-V keeps disk files; vmhost's VM folder holds only config, logs and saved state.
      await rm(e.paths.dir, { recursive: true, force: true });
      await rm(e.paths.sockets, { recursive: true, force: true });
      this.vms.delete(e.config.id);
      this.checkpoints.forget(e);
      this.event('Information', 'VM_REMOVED', 'VM removed', e);
    });
  }

  // ---- failover clustering (src/cluster drives these) -------------------------------

  /**
   * Add-ClusterVirtualMachineRole's host half: an Off VM's folder moves into the cluster's shared
   * folder (`<shared>/vms/<id>`, which every node reaches; its disks must be there already) and the
   * VM leaves this registry: from now on only the node owning the role registers it (`adoptClustered`).
   */
  async moveToShared(nameOrId: string, sharedRoot: string): Promise<{ id: string; name: string }> {
    const e = this.resolve(nameOrId);
    return e.lock.run(async () => {
      const vm = e.config.name;
      if (e.fence) throw new VmhostError('CLUSTER_INVALID_OPERATION', `VM '${vm}' is already a clustered role`, { vm });
      assertLegal('MakeClustered', e.state, vm);
      if (this.checkpoints.all(e).length > 0) throw new VmhostError('CLUSTER_INVALID_OPERATION', `VM '${vm}' has checkpoints; a clustered role cannot carry them yet`, { vm });
      const root = resolve(sharedRoot);
      const outside = [...e.config.hardDrives.map((d) => d.path), ...e.config.dvdDrives.flatMap((d) => (d.path === null ? [] : [d.path]))].filter((p) => !isInside(root, p));
      if (outside.length > 0) {
        throw new VmhostError('CLUSTER_INVALID_OPERATION', `VM '${vm}': ${outside.join(', ')} is not in the cluster's shared folder ${root}, so another node could not reach it`, { vm, path: outside[0] });
      }
      const target = clusteredVmPaths(this.dataDir, root, e.config.id);
      await this.moveFolder(e, target);
      return { id: e.config.id, name: vm };
    });
  }

  /** Remove-ClusterGroup: the role's VM, Off or Saved, comes back into this node's data dir as an ordinary VM. */
  async leaveShared(id: string): Promise<void> {
    const e = this.vms.get(id);
    if (!e?.fence) throw new VmhostError('NOT_FOUND', `No clustered VM with Id ${id} is registered on this node`, { vm: id });
    await e.lock.run(async () => {
      assertLegal('LeaveCluster', e.state, e.config.name);
      this.storage.fenceDrives(e.config.hardDrives, undefined);
      await this.moveFolder(e, vmPaths(this.dataDir, id));
    });
    await this.adoptFolder(vmPaths(this.dataDir, id), undefined);
  }

  /**
   * The owner node registers a clustered VM from the shared folder, its disks fenced by `fence`
   * (the ownership token). A QEMU of it this node still runs is re-attached (runtime.json is node-local).
   */
  async adoptClustered(sharedRoot: string, id: string, fence: OwnershipFence): Promise<VmView> {
    return this.view(await this.adoptFolder(this.clusteredPaths(sharedRoot, id), fence));
  }

  /** Where a clustered VM's files are on this node (vm-paths.ts). */
  clusteredPaths(sharedRoot: string, id: string): VmPaths {
    return clusteredVmPaths(this.dataDir, resolve(sharedRoot), id);
  }

  /** This node no longer owns the clustered VM: its writes are refused at once, it is turned off and unregistered; its files stay. */
  async releaseClustered(id: string, why: string): Promise<void> {
    const e = this.vms.get(id);
    if (!e?.fence) return;
    e.fence.revoke(why);
    const rt = e.runtime;
    if (rt) { e.expectedExit = why; await rt.kill(); await rt.exited; await this.settleExit(e); }
    await e.lock.run(async (held) => {
      await this.turnOffLocked(e, why, held);
      await this.network.forgetVm(e);
      this.storage.fenceDrives(e.config.hardDrives, undefined);
      this.vms.delete(id);
      this.checkpoints.forget(e);
      await rm(dirname(e.paths.runtime), { recursive: true, force: true });
      this.event('Warning', 'VM_CLUSTER_RELEASED', `Clustered VM released by this node: ${why}`, e);
    });
  }

  /**
   * A cluster node's start: QEMUs of clustered VMs that an earlier daemon of this node ran (it
   * was killed, its lease expired). This daemon owns nothing yet and those roles may already run
   * on another node, so they are turned off — checked to be the VM's QEMU first (pid alive, its
   * /proc cmdline names the VM's uuid) — and their node-local records removed.
   */
  async turnOffStrayClustered(): Promise<string[]> {
    const root = join(this.dataDir, 'clustered');
    const killed: string[] = [];
    for (const id of await readdir(root).catch(() => [] as string[])) {
      const record = await readJson<RuntimeRecord>(join(root, id, 'runtime.json')).catch(() => undefined);
      if (record && isPidAlive(record.pid) && isQemuOfVm(record.pid, record.uuid)) {
        // Its process group, as QemuProcess.kill does: QEMU runs detached in its own.
        try { process.kill(-record.pid, 'SIGKILL'); } catch { process.kill(record.pid, 'SIGKILL'); }
        killed.push(id);
        this.event('Warning', 'VM_CLUSTER_STRAY_STOPPED', `Clustered VM ${id}: the QEMU (pid ${record!.pid}) an earlier daemon of this node ran was turned off; the cluster places the role again`);
      }
      await rm(join(root, id), { recursive: true, force: true });
    }
    return killed;
  }

  /** Ids of the clustered VMs registered here, with their state; `boot`: the guest's boot while a QEMU runs (its pid and resets: a new one at every start and reboot). */
  clusteredVms(): { id: string; name: string; state: VmState; boot?: string }[] {
    return [...this.vms.values()].filter((e) => e.fence).map((e) => ({
      id: e.config.id, name: e.config.name, state: e.state, ...(e.runtime ? { boot: `${e.runtime.pid}/${e.runtime.resets}` } : {}),
    }));
  }

  /** Copy a VM's folder to `to`, point its config there, unregister it and remove the old folder (the caller holds its lock). */
  private async moveFolder(e: VmEntry, to: VmPaths): Promise<void> {
    await mkdir(dirname(to.dir), { recursive: true });
    // A copy, not a rename: the shared folder is usually another file system (NFS, SMB, a SAN volume).
    await cp(e.paths.dir, to.dir, { recursive: true, errorOnExist: true, force: false });
    const snapshots = isInside(e.paths.dir, e.config.snapshotFileLocation) ? join(to.dir, 'snapshots') : e.config.snapshotFileLocation;
    await writeFileAtomic(to.config, JSON.stringify({ ...e.config, snapshotFileLocation: snapshots }, null, 2) + '\n');
    await this.network.forgetVm(e);
    this.vms.delete(e.config.id);
    this.checkpoints.forget(e);
    await rm(e.paths.dir, { recursive: true, force: true });
    await rm(e.paths.sockets, { recursive: true, force: true });
    this.event('Information', 'VM_FOLDER_MOVED', `VM folder moved to ${to.dir}`, e);
  }

  /** Register the VM whose folder is `paths.dir` (a clustered one when `fence` is given). */
  private async adoptFolder(paths: VmPaths, fence: OwnershipFence | undefined): Promise<VmEntry> {
    const config = upgradeConfig(await readJson<RawConfig>(paths.config), { snapshotDir: join(paths.dir, 'snapshots') }, `VM folder ${paths.dir}`).config;
    checkConfig(config, this.facts.logicalProcessors);
    return this.names.run(async () => {
      const known = this.vms.get(config.id);
      if (known && fence) {
        // Registered already (a second claim of the same role): the newest token fences it.
        known.fence = fence;
        this.storage.fenceDrives(known.config.hardDrives, fence);
        return known;
      }
      this.assertNameFree(config.name, config.id);
      const entry = new VmEntry(config, paths);
      entry.fence = fence;
      if (fence) this.storage.fenceDrives(config.hardDrives, fence);
      await mkdir(dirname(paths.runtime), { recursive: true });
      this.vms.set(config.id, entry);
      await this.checkpoints.load(entry);
      await this.network.attach(entry);
      await this.recover(entry);
      this.event('Information', fence ? 'VM_CLUSTER_ADOPTED' : 'VM_REGISTERED', fence ? `Clustered VM registered on this node (ownership token ${fence.token})` : 'VM registered', entry);
      return entry;
    });
  }

  // ---- lifecycle actions (each a job) ------------------------------------------------

  /**
   * A lifecycle action as a job under the VM's lock. Legality is checked before queuing (an
   * illegal request fails at once with a clear error) and again under the lock (an earlier
   * queued action may have changed the state).
   */
  private lifecycle(action: VmAction, jobName: string, nameOrId: string, fn: (e: VmEntry, h: JobHandle, held: LockHeld) => Promise<void>): { job: Job; result: Promise<VmView> } {
    const e = this.resolve(nameOrId);
    assertLegal(action, e.state, e.config.name);
    return this.jobs.run(jobName, { id: e.config.id, name: e.config.name }, (h) => e.lock.run(async (held) => {
      assertLegal(action, e.state, e.config.name);
      await fn(e, h, held);
      return this.view(e);
    }));
  }

  start(nameOrId: string): { job: Job; result: Promise<VmView> } {
    const r = this.resolve(nameOrId);
    const look = this.replicationLook(r.config.id);
    // A Replica VM starts once failed over (src/replica/failover-rules.ts): then it is the VM.
    if (look?.mode === 'Replica' && look.state !== 'FailedOverWaitingCompletion' && look.state !== 'FailedOver') {
      throw new VmhostError('REPLICATION_VM_IS_REPLICA', `'${r.config.name}' is a Replica VM: it starts only after a failover`, { vm: r.config.name });
    }
    return this.lifecycle('Start', 'Start-VM', nameOrId, async (e, h, held) => {
      const restoring = e.state === 'Saved';
      const before = e.state;
      e.machine.transition(held, 'Starting');
      h.progress(10, restoring ? 'Restoring saved state' : 'Starting QEMU');
      try {
        const disks = [];
        for (const d of e.config.hardDrives) {
          disks.push(await this.storage.serveDrive(d));
          e.bootableDrives.set(d.id, hasBootSignature(await this.storage.firstSector(d)));
        }
        if (e.config.floppyPath !== null) e.bootableDrives.set(FLOPPY_ID, await floppyIsBootable(e.config.floppyPath));
        const saved = restoring ? await readJson<SavedInfo>(`${e.paths.savedState}.json`).catch(() => undefined) : undefined;
        // A restore rebuilds the machine that was saved: same boot source, whatever the disks hold now.
        const boot = saved?.boot ?? bootSource(e.config, (id) => e.bootableDrives.get(id) ?? false);
        const order = boot === 'Firmware' ? bootIndexes(e.config, (id) => e.bootableDrives.get(id) ?? false) : new Map<string, number>();
        for (const [i, d] of e.config.hardDrives.entries()) disks[i]!.bootIndex = order.get(d.id);
        for (const d of e.config.dvdDrives) disks.push({ ...VmStorage.dvdSpec(d), bootIndex: order.get(d.id) });
        const nics = (await this.network.nicsForStart(e, !restoring)).map((n, i) => ({ ...n, bootIndex: order.get(e.config.networkAdapters[i]!.id) }));
        e.bootFailure = undefined;
        // A restore rebuilds the saved machine's memory devices too.
        const memory = saved?.memory ?? await this.memory.plan(e);
        const rt = await VmRuntime.launch({
          config: e.config, paths: e.paths, accelerator: this.accelerator, disks, nics, boot, floppyBootIndex: order.get(FLOPPY_ID),
          restoreFrom: restoring ? e.paths.savedState : undefined, runAs: this.qemuUser?.name, memory,
        });
        e.memoryPlan = memory;
        e.bootSource = boot;
        this.adopt(e, rt, e.uptimeBaseMs);
        e.runningSinceMs = Date.now();
        await writeFileAtomic(e.paths.runtime, JSON.stringify(rt.record(e.uptimeBaseMs, e.runningSinceMs), null, 2));
        if (restoring) {
          await rm(e.paths.savedState, { force: true });
          await rm(`${e.paths.savedState}.json`, { force: true });
        }
        e.machine.transition(held, 'Running');
        e.lastExitReason = undefined;
        this.event('Information', 'VM_STARTED', restoring ? `VM started from saved state (QEMU pid ${rt.pid})` : `VM started (QEMU pid ${rt.pid}, ${this.accelerator})`, e);
      } catch (err) {
        e.machine.transition(held, before);
        await this.memory.stopped(e);
        for (const d of e.config.hardDrives) await this.storage.stopDrive(d);
        this.event('Error', 'VM_START_FAILED', `VM failed to start: ${(err as Error).message}`, e);
        throw err;
      }
    });
  }

  /**
   * After a daemon restart, a VM whose disk requests outlived QEMU's reconnect-delay is
   * stopped with an I/O error; its requests are retried by `cont` once QEMU's NBD client has
   * reconnected (its retry interval grows to 16 s), so keep trying for a while.
   */
  private async resumeAfterStorageOutage(e: VmEntry, rt: VmRuntime): Promise<void> {
    for (let i = 0; i < 60 && e.runtime === rt; i++) {
      if ((await rt.status().catch(() => 'other')) === 'io-error') {
        await rt.resume().catch(() => undefined);
        await sleep(1000);
        if ((await rt.status().catch(() => 'other')) === 'running') {
          await e.lock.run(async (held) => {
            if (e.runtime !== rt) return;
            e.machine.transition(held, 'Running');
            this.event('Information', 'VM_RESUMED', 'VM resumed: its disks are served again after a storage outage', e);
          });
        }
      }
      await sleep(1000);
    }
  }

  /**
   * A clustered VM's write refused by its fence while its node's keepalive answer was late: QEMU
   * stopped the VM (werror=stop) with the write kept. If the answer then comes (the lease was
   * never lost, so the token is still the node's), the write may pass: resume, and QEMU retries
   * it — through the fencing stage, which checks it again. Without this the role would stay
   * Online with its guest frozen. A fence that is revoked instead (the node isolated, the role
   * released) ends the wait: the release turns the VM off.
   */
  private async resumeWhenFenceValid(e: VmEntry, rt: VmRuntime, fence: OwnershipFence): Promise<void> {
    while (e.runtime === rt && e.fence === fence && fence.refusal() !== undefined) {
      if (fence.revoked) return;
      await sleep(200);
    }
    if (e.runtime !== rt || e.fence !== fence || (await rt.status().catch(() => 'other')) !== 'io-error') return;
    await rt.resume().catch(() => undefined);
    await e.lock.run(async (held) => {
      if (e.runtime !== rt || e.state !== 'Paused' || (await rt.status().catch(() => 'other')) !== 'running') return;
      e.machine.transition(held, 'Running');
      this.event('Information', 'VM_RESUMED', `VM resumed: its node's lease was renewed, so the disk writes its ownership fence refused meanwhile are retried (token ${fence.token})`, e);
    });
  }

  /** Watch a runtime: when its QEMU exits, the VM is Off and an event says why. */
  private adopt(e: VmEntry, rt: VmRuntime, uptimeBaseMs: number): void {
    e.runtime = rt;
    e.uptimeBaseMs = uptimeBaseMs;
    rt.on('heartbeat', (status: HeartbeatStatus) => {
      this.event(status === 'OK' ? 'Information' : 'Warning', 'VM_HEARTBEAT', `Heartbeat ${status}`, e);
    });
    rt.on('boot-failed', (reason) => {
      e.bootFailure = reason;
      this.event('Error', 'VM_BOOT_FAILED', `The VM failed to boot: ${reason}`, e);
    });
    rt.timeSyncEnabled = () => e.config.integrationServices['Time Synchronization'];
    rt.on('time-sync', (c) => {
      this.event('Information', 'VM_TIME_SYNC', `Time Synchronization set the guest clock (${c.trigger}): it was ${(c.skewMs / 1000).toFixed(1)} s ${c.skewMs > 0 ? 'ahead of' : 'behind'} the host`, e);
    });
    rt.on('io-error', (x) => {
      // Under the lock like every state change; the event goes out with it.
      void e.lock.run(async (held) => {
        if (e.runtime === rt && e.state === 'Running') e.machine.transition(held, 'Paused');
        this.event('Error', 'VM_PAUSED_CRITICAL', `VM paused: ${x.operation} error on disk ${x.device} (${x.reason}); Resume-VM continues it once the disk is reachable`, e);
      });
      // EPERM is the fencing stage's refusal (STORAGE_FENCED): see resumeWhenFenceValid.
      if (e.fence && /not permitted/i.test(x.reason)) void this.resumeWhenFenceValid(e, rt, e.fence);
    });
    e.exitHandled = rt.exited.then((info) => this.onExit(e, rt, info));
  }

  /**
   * QEMU exited. The cleanup is what `exitHandled` waits for; the state change waits for the
   * lock, since an action holding it (Stop-VM, Save-VM, -TurnOff) may be awaiting this exit and
   * then settles the state itself.
   */
  private async onExit(e: VmEntry, rt: VmRuntime, info: ExitInfo): Promise<void> {
    if (e.runtime !== rt) return;
    // Exports first: the VM counts as stopped (settleExit) only once its disks are free.
    for (const d of e.config.hardDrives) await this.storage.stopDrive(d);
    await this.memory.stopped(e);
    e.runtime = undefined;
    const reason = e.expectedExit ?? (info.guestShutdown ? 'the guest shut down' : `QEMU process ${rt.pid} exited unexpectedly (${info.detail})`);
    e.expectedExit = undefined;
    e.runningSinceMs = undefined;
    e.lastExitReason = reason;
    await rm(e.paths.runtime, { force: true });
    void e.lock.run(async (held) => {
      this.settleOff(e, held);
      // The event goes out with the state change, so whoever sees Off can also read why.
      this.event(reason.includes('unexpectedly') ? 'Error' : 'Information', 'VM_STOPPED', `VM turned off: ${reason}`, e);
    });
  }

  /** Under the lock, once QEMU has exited: the VM is Off, unless it was saved or a newer run has begun. */
  private settleOff(e: VmEntry, held: LockHeld): void {
    if (e.runtime !== undefined || e.state === 'Off' || e.state === 'Saved') return;
    e.uptimeBaseMs = 0;
    e.bootSource = undefined;
    e.machine.transition(held, 'Off');
  }

  /** `started`'s lock is queued: a live merge holding it pauses, so the stop does not wait for the whole merge. */
  private pausingMerge<T>(nameOrId: string, started: T): T {
    this.resolve(nameOrId).mergePause?.abort();
    return started;
  }

  stop(nameOrId: string, p: StopParams = {}): { job: Job; result: Promise<VmView> } {
    return this.pausingMerge(nameOrId, this.stopQueued(nameOrId, p));
  }

  private stopQueued(nameOrId: string, p: StopParams): { job: Job; result: Promise<VmView> } {
    if (p.Save) return this.save(nameOrId);
    if (p.TurnOff) {
      const e = this.resolve(nameOrId);
      assertLegal('TurnOff', e.state, e.config.name);
      const why = 'turned off by an administrator (Stop-VM -TurnOff)';
      return this.jobs.run('Stop-VM', { id: e.config.id, name: e.config.name }, async () => {
        // The kill does not wait for the lock: turning off must cut through a hung shutdown or
        // start, which then ends and frees the lock. The state changes under it.
        const rt = e.runtime;
        if (rt) { e.expectedExit = why; await rt.kill(); await rt.exited; await this.settleExit(e); }
        await e.lock.run((held) => this.turnOffLocked(e, why, held));
        return this.view(e);
      });
    }
    return this.lifecycle('Stop', 'Stop-VM', nameOrId, async (e, h, held) => {
      const rt = this.live(e);
      e.machine.transition(held, 'Stopping');
      e.expectedExit = 'shut down by an administrator (Stop-VM)';
      h.progress(10, 'Asking the guest to shut down');
      const viaAgent = e.config.integrationServices.Shutdown && (await rt.agentShutdown());
      if (!viaAgent) await rt.acpiPowerdown();
      this.event('Information', 'VM_STOPPING', `Shutting down the guest through ${viaAgent ? 'the integration services agent' : 'ACPI'}`, e);
      const done = await Promise.race([rt.exited.then(() => true), sleep(GRACEFUL_STOP_MS).then(() => false)]);
      if (!done) {
        if (!p.Force) {
          e.machine.transition(held, 'Running');
          e.expectedExit = undefined;
          throw new VmhostError('TIMEOUT', `The guest did not shut down within ${GRACEFUL_STOP_MS / 1000} s; use -Force or -TurnOff`, { vm: e.config.name });
        }
        await this.turnOffLocked(e, 'guest did not shut down in time; turned off (Stop-VM -Force)', held);
      }
      await this.settleExit(e);
      this.settleOff(e, held);
    });
  }

  private async turnOffLocked(e: VmEntry, why: string, held: LockHeld): Promise<void> {
    const rt = e.runtime;
    if (rt) {
      e.expectedExit = why;
      await rt.kill();
      await rt.exited;
      await this.settleExit(e);
    }
    this.settleOff(e, held);
  }

  /** onExit runs from the exited promise; wait until it has updated the entry. */
  private async settleExit(e: VmEntry): Promise<void> {
    await e.exitHandled;
  }

  private live(e: VmEntry): VmRuntime {
    if (!e.runtime) throw new VmhostError('INVALID_STATE', `VM '${e.config.name}' has no running QEMU process`, { vm: e.config.name });
    return e.runtime;
  }

  restart(nameOrId: string): { job: Job; result: Promise<VmView> } {
    return this.lifecycle('Restart', 'Restart-VM', nameOrId, async (e) => {
      await this.live(e).reset();
      this.event('Information', 'VM_RESET', 'VM was reset (Restart-VM)', e);
    });
  }

  suspend(nameOrId: string): { job: Job; result: Promise<VmView> } {
    return this.lifecycle('Suspend', 'Suspend-VM', nameOrId, async (e, _h, held) => {
      await this.live(e).pause();
      e.machine.transition(held, 'Paused');
      this.event('Information', 'VM_PAUSED', 'VM paused', e);
    });
  }

  resume(nameOrId: string): { job: Job; result: Promise<VmView> } {
    return this.lifecycle('Resume', 'Resume-VM', nameOrId, async (e, _h, held) => {
      await this.live(e).resume();
      e.machine.transition(held, 'Running');
      this.event('Information', 'VM_RESUMED', 'VM resumed', e);
    });
  }

  save(nameOrId: string): { job: Job; result: Promise<VmView> } {
    return this.pausingMerge(nameOrId, this.lifecycle('Save', 'Save-VM', nameOrId, async (e, h, held) => {
      const rt = this.live(e);
      const before = e.state;
      e.machine.transition(held, 'Saving');
      const uptimeMs = e.uptimeBaseMs + (e.runningSinceMs !== undefined ? Date.now() - e.runningSinceMs : 0);
      try {
        await this.saveMemory(rt, e.paths.savedState, (pct) => h.progress(pct * 0.95, 'Saving memory'));
      } catch (err) {
        e.machine.transition(held, before);
        await rt.resume().catch(() => undefined);
        throw err;
      }
      await writeFileAtomic(`${e.paths.savedState}.json`, JSON.stringify({ uptimeMs, savedAt: new Date().toISOString(), boot: e.bootSource, memory: e.memoryPlan } satisfies SavedInfo));
      e.machine.transition(held, 'Saved');
      e.expectedExit = 'state saved (Save-VM)';
      await rt.quit();
      await rt.exited;
      await this.settleExit(e);
      e.uptimeBaseMs = uptimeMs;
    }));
  }

  /** The VM's memory and device state into `file`; QEMU stays in postmigrate (quit it, or resume). */
  private async saveMemory(rt: VmRuntime, file: string, progress: (pct: number) => void): Promise<void> {
    // QEMU, no longer root, connects to the save socket: in its group's dir.
    await rt.saveState(file, progress, this.qemuUser && { socketDir: shortSocketRoot(this.dataDir), socketGroup: this.qemuUser.gid });
  }

  /** A checkpoint's memory becomes the VM's saved state (a copy: the checkpoint keeps its own). */
  private async adoptSavedState(e: VmEntry, held: LockHeld, memory: string, uptimeMs: number, boot: BootSourceKind | null): Promise<void> {
    await copyFile(memory, e.paths.savedState);
    await writeFileAtomic(`${e.paths.savedState}.json`, JSON.stringify({ uptimeMs, savedAt: new Date().toISOString(), ...(boot ? { boot } : {}) } satisfies SavedInfo));
    e.machine.transition(held, 'Saved');
    e.uptimeBaseMs = uptimeMs;
    e.bootSource = boot ?? undefined;
  }

  private async dropSavedState(e: VmEntry, held: LockHeld): Promise<void> {
    await rm(e.paths.savedState, { force: true });
    await rm(`${e.paths.savedState}.json`, { force: true });
    e.machine.transition(held, 'Off');
    e.uptimeBaseMs = 0;
    e.bootSource = undefined;
  }

  async removeSavedState(nameOrId: string): Promise<VmView> {
    const e = this.resolve(nameOrId);
    return e.lock.run(async (held) => {
      assertLegal('RemoveSavedState', e.state, e.config.name);
      await this.dropSavedState(e, held);
      this.event('Information', 'VM_SAVED_STATE_REMOVED', 'Saved state deleted', e);
      return this.view(e);
    });
  }

  // ---- checkpoints ------------------------------------------------------------------

  /** Checkpoint-VM: a job (a running VM's memory is saved beside the checkpoint). */
  checkpoint(nameOrId: string, snapshotName?: string): { job: Job; result: Promise<VmView> } {
    if (snapshotName !== undefined && (snapshotName.trim() === '' || snapshotName.length > 100)) throw invalid('SnapshotName', 'must be 1–100 characters');
    return this.lifecycle('Checkpoint', 'Checkpoint-VM', nameOrId, async (e, h, held) => {
      await this.checkpoints.take(e, h, held, snapshotName);
    });
  }

  snapshots(nameOrId: string): SnapshotView[] {
    const e = this.resolve(nameOrId);
    return this.recoveryPoints(e.config.id) ?? this.checkpoints.list(e);
  }

  async removeSnapshotSavedState(nameOrId: string, snapshot: string): Promise<SnapshotView> {
    const e = this.resolve(nameOrId);
    return e.lock.run(() => this.checkpoints.dropMemory(e, snapshot));
  }

  async renameSnapshot(nameOrId: string, snapshot: string, newName: string): Promise<SnapshotView> {
    const e = this.resolve(nameOrId);
    return e.lock.run(() => this.checkpoints.rename(e, snapshot, newName));
  }

  /**
   * Remove-VMSnapshot: a job (merging disks takes a while; a running VM's merge is live). A
   * Stop-VM or Save-VM meanwhile does not wait for the merge: it pauses it between chunks
   * (`mergePause`), takes the lock, and the removal goes on after it — offline once the VM is
   * off or saved, on the files the live merge left (the same state a daemon crash leaves).
   */
  removeSnapshot(nameOrId: string, snapshot: string, withChildren: boolean): { job: Job; result: Promise<VmView> } {
    const e = this.resolve(nameOrId);
    assertLegal('RemoveSnapshot', e.state, e.config.name);
    const top = this.checkpoints.find(e, snapshot).id; // refused before a job exists
    return this.jobs.run('Remove-VMSnapshot', { id: e.config.id, name: e.config.name }, async (h) => {
      while (await e.lock.run(() => this.removeUnlessPaused(e, top, withChildren, h))) {
        h.progress(0, 'Paused while the VM stops; the merge goes on after');
        this.event('Information', 'VM_CHECKPOINT_MERGE_PAUSED', 'The live merge paused for a stop of the VM; it resumes after it', e);
        // A turn-off kills QEMU first and takes the lock once the exit is handled (onExit clears both fields): let it in first.
        if (e.runtime === undefined || e.expectedExit !== undefined) await e.exitHandled;
        await new Promise((r) => setImmediate(r));
      }
      return this.view(e);
    });
  }

  /** Under the VM's lock: the removal, or true when a stop paused its live merge (the checkpoint is still `merging`). */
  private async removeUnlessPaused(e: VmEntry, top: string, withChildren: boolean, h: JobHandle): Promise<boolean> {
    assertLegal('RemoveSnapshot', e.state, e.config.name);
    e.mergePause = new AbortController();
    try {
      await this.checkpoints.remove(e, top, withChildren, (pct, status) => h.progress(pct, status), e.mergePause.signal);
      return false;
    } catch (err) {
      if (isVmhostError(err, 'STORAGE_MERGE_PAUSED')) return true;
      throw err;
    } finally {
      e.mergePause = undefined;
    }
  }

  /** Daemon start: finish the checkpoint removals a stop interrupted (their merges are idempotent). */
  private resumeRemovals(e: VmEntry): void {
    for (const id of this.checkpoints.pendingRemovals(e)) {
      this.event('Information', 'VM_CHECKPOINT_MERGE_RESUMED', `Resuming the removal of checkpoint ${id} (interrupted by a daemon stop)`, e);
      this.removeSnapshot(e.config.id, id, false).result.catch((err: unknown) =>
        this.event('Error', 'VM_CHECKPOINT_MERGE_FAILED', `Removing checkpoint ${id} failed: ${(err as Error).message}`, e));
    }
  }

  /** Restore-VMSnapshot: a VM that was running is started again from the checkpoint's memory (so it keeps running, at that moment). */
  restoreSnapshot(nameOrId: string, snapshot: string): { job: Job; result: Promise<VmView> } {
    const e = this.resolve(nameOrId);
    assertLegal('RestoreSnapshot', e.state, e.config.name);
    this.checkpoints.find(e, snapshot); // refused before a job exists
    return this.jobs.run('Restore-VMSnapshot', { id: e.config.id, name: e.config.name }, async (h) => {
      h.progress(10, 'Restoring checkpoint');
      const { wasRunning } = await e.lock.run(async (held) => {
        assertLegal('RestoreSnapshot', e.state, e.config.name);
        return this.checkpoints.restore(e, held, snapshot);
      });
      if (wasRunning && e.state === 'Saved') {
        h.progress(60, 'Starting from the checkpoint\'s memory');
        await this.start(e.config.id).result;
      }
      return this.view(e);
    });
  }

  private get moveStorageHost(): MoveStorageHost {
    return { storage: this.storage, checkpoints: this.checkpoints, persistNext: (e, next) => this.persistNext(e, next), event: (level, code, message, e) => this.event(level, code, message, e) };
  }

  /**
   * Move-VMStorage: a job (vm-move-storage.ts), Queued while -MaximumStorageMigrations moves
   * run, cancellable (Stop-Job) until its last switch; a running VM's disks are mirrored live.
   */
  moveStorage(nameOrId: string, p: MoveStorageParams): { job: Job; result: Promise<VmView> } {
    const e = this.resolve(nameOrId);
    assertLegal('MoveStorage', e.state, e.config.name);
    return this.jobs.run('Move-VMStorage', { id: e.config.id, name: e.config.name }, (h) => this.storageQueue.run(h, () => e.lock.run(async () => {
      assertLegal('MoveStorage', e.state, e.config.name);
      await moveStorage(e, p, this.moveStorageHost, h);
      this.event('Information', 'VM_STORAGE_MOVED', `VM storage moved${p.DestinationStoragePath ? ` to ${p.DestinationStoragePath}` : ''}`, e);
      return this.view(e);
    })), { queued: true, cancellable: true });
  }

  // ---- export and import ------------------------------------------------------------

  /** Export-VM: config, disks, checkpoints, firmware variables and saved state into `<path>/<VM name>` (export-layout.ts). */
  exportVm(nameOrId: string, path: string): { job: Job; result: Promise<VmView> } {
    return this.lifecycle('Export', 'Export-VM', nameOrId, async (e, h) => {
      const live = e.state === 'Running' || e.state === 'Paused';
      const names = stateFiles(e.paths).filter((n) => !live || !n.startsWith(basename(e.paths.savedState)));
      const state = await this.presentStateFiles(e, names);
      const checkpoints = this.checkpoints.all(e).map((record) => ({ record, memory: this.checkpoints.memoryOf(e, record) }));
      const layout = await writeExport(path, { config: e.config, checkpoints, state, live: live ? liveLeafCopy(this.storage.server, e.config.hardDrives.map((d) => VmStorage.exportName(d))) : undefined }, (f) => this.chainOfDrive(e, f), h);
      this.event('Information', 'VM_EXPORTED', `VM exported to ${layout.root}${live ? ' (running: its disks as of one moment, crash-consistent; it imports Off)' : ''}`, e);
    });
  }

  // ---- incremental backup (vm-backup.ts) --------------------------------------------------

  /**
   * Run `take` — the pause in which a point of the VM's disks is taken — with the guest's file
   * systems frozen through its agent when it can (guest-freeze.ts), thawed right after: an
   * application-consistent point, else a crash-consistent one with the reason. Start-VMBackup's
   * points and the replica's app-consistent recovery points use it.
   */
  atConsistentPoint<T>(e: VmEntry, take: () => Promise<T>): Promise<FreezeResult<T>> {
    // A paused guest cannot answer (its vCPUs are stopped): no freeze to ask for.
    const running = e.state === 'Running';
    return atConsistentPoint(running ? e.runtime?.readyAgent() : undefined, serviceEnabled(e.config, 'VSS'), take, running ? undefined : `the VM is ${e.state}: its guest cannot freeze`);
  }

  /** Start-VMBackup: the VM's next backup point in the repository at `destination` (the first one full); -KeepLast: then only the newest N points stay. */
  backupVm(nameOrId: string, destination: string, keepLast?: number): { job: Job; result: Promise<VmBackup> } {
    const e = this.resolve(nameOrId);
    assertLegal('Backup', e.state, e.config.name);
    if (keepLast !== undefined && (!Number.isInteger(keepLast) || keepLast < 1)) throw invalid('KeepLast', `must be a whole number ≥ 1, not ${keepLast}`, e.config.name);
    return this.jobs.run('Start-VMBackup', { id: e.config.id, name: e.config.name }, (h) => e.lock.run(async () => {
      assertLegal('Backup', e.state, e.config.name);
      const b = await this.backups.backup(e, destination, h, { consistent: (take) => this.atConsistentPoint(e, take), keepLast });
      const removed = b.Removed?.length ? `; ${b.Removed.length} older point(s) removed (-KeepLast ${keepLast})` : '';
      this.event('Information', 'VM_BACKED_UP', `${b.Kind} ${b.ConsistencyLevel === 'ApplicationConsistent' ? 'application-consistent' : 'crash-consistent'} backup ${b.BackupId} (point ${b.Point}) stored in ${b.Repository}: ${b.ChangedBytes} bytes read of ${b.VirtualSize}, ${b.StoredBytes} new bytes stored${removed}`, e);
      return b;
    }));
  }

  /** Get-VMBackup: the points in a repository, of one VM when `vmName` is given. */
  listBackups(repository: string, vmName?: string): Promise<VmBackup[]> {
    return this.backups.list(repository, vmName);
  }

  /**
   * Restore-VMBackup: the point's disks as new VHDX files in `destination`; with `newVmName`, a
   * new VM (new id, new dynamic MACs) registered Off on them, its disks by default in
   * DIR/Virtual Hard Disks/<name>.
   */
  restoreBackup(repository: string, backupId: string, destination: string | undefined, newVmName?: string): { job: Job; result: Promise<RestoredDisk[] | VmView> } {
    if (newVmName === undefined && destination === undefined) throw invalid('DestinationPath', 'give the folder for the restored disks, or -NewVMName to restore a new VM');
    if (newVmName !== undefined) {
      checkName(newVmName);
      this.assertNameFree(newVmName);
    }
    const dest = destination ?? join(this.dataDir, 'Virtual Hard Disks', newVmName!);
    return this.jobs.run('Restore-VMBackup', undefined, async (h) => {
      const r = await this.backups.restore(repository, backupId, dest, h);
      if (newVmName === undefined) return r.disks;
      const undo = async () => { for (const d of r.disks) await rm(d.Path, { force: true }); };
      if (r.config === undefined) {
        await undo();
        throw new VmhostError('BACKUP_NO_CONFIG', `backup ${r.backup.BackupId} holds no VM configuration (taken by an older vmhost): restore its disks with -DestinationPath and attach them to a new VM`, { backup: r.backup.BackupId });
      }
      try {
        const vm = newVmConfigFromBackup({
          source: r.config, name: newVmName, disks: new Map(r.disks.map((d) => [d.DriveId, d.Path])),
          snapshotDir: (id) => join(vmPaths(this.dataDir, id).dir, 'snapshots'), newMac: (taken) => this.network.dynamicMac(taken),
        }, `backup ${r.backup.BackupId}`);
        const vars = decodeFirmwareVars(r.firmwareVars, `backup ${r.backup.BackupId}`);
        const entry = await this.names.run(() => this.registerImported(vm, '', [], false));
        // Registered: a failed write leaves a VM that starts with fresh variables, which is said, not undone.
        await writeFirmwareVars(entry.paths, vars).catch((err: unknown) => this.event('Warning', 'VM_FIRMWARE_VARS_NOT_RESTORED',
          `The UEFI variables of backup ${r.backup.BackupId} could not be written (${(err as Error).message}): the VM starts with fresh ones`, entry));
        this.event('Information', 'VM_RESTORED_FROM_BACKUP', `VM restored from backup ${r.backup.BackupId} of '${r.backup.VMName}' (point ${r.backup.Point}, ${r.backup.ConsistencyLevel}) in ${r.backup.Repository}; disks in ${dest}`, entry);
        return this.view(entry);
      } catch (err) {
        await undo();
        throw err;
      }
    });
  }

  /**
   * A backup point's disks built in `destination` with the VM configuration the point holds:
   * what a Replica server seeds a replica from (Import-VMInitialReplication of a backup
   * repository, src/replica). Nothing is registered here.
   */
  restoreBackupPoint(repository: string, backupId: string, destination: string): Promise<{ backup: VmBackup; disks: RestoredDisk[]; config: VmConfig | undefined }> {
    return this.jobs.run('Restore-VMBackup', undefined, (h) => this.backups.restore(repository, backupId, destination, h)).result;
  }

  /** Restore-VMBackup -VMName: the point over the VM's own disks (Off, no checkpoints). */
  restoreBackupOver(nameOrId: string, repository: string, backupId: string): { job: Job; result: Promise<RestoredDisk[]> } {
    const e = this.resolve(nameOrId);
    assertLegal('RestoreBackup', e.state, e.config.name);
    return this.jobs.run('Restore-VMBackup', { id: e.config.id, name: e.config.name }, (h) => e.lock.run(async () => {
      assertLegal('RestoreBackup', e.state, e.config.name);
      // A checkpoint's files are the parents of the VM's disks: a full file in their place would orphan them.
      if (e.config.parentSnapshotId !== null) throw new VmhostError('INVALID_STATE', `VM '${e.config.name}' has checkpoints: remove them first, or restore with -NewVMName`, { vm: e.config.name });
      const r = await this.backups.restoreOver(e, repository, backupId, h);
      this.event('Information', 'VM_RESTORED_FROM_BACKUP', `Disks restored over from backup ${r[0]?.BackupId ?? backupId} in ${repository}`, e);
      return r;
    }));
  }

  /** Remove-VMBackup: the point and the later points of its chain. */
  removeBackup(repository: string, backupId: string): Promise<VmBackup[]> {
    return this.backups.remove(repository, backupId, (id) => this.vms.get(id));
  }

  // ---- Hyper-V Replica (src/replica: the relationships; here only what needs a VM's insides) ----

  /** What src/replica tells Get-VM about a VM's replication (set once by the daemon). */
  setReplicationLook(look: (vmId: string) => ReplicationLook | undefined): void {
    this.replicationLook = look;
  }

  /** What src/replica tells Get-VMSnapshot of a Replica VM: its recovery points. */
  setRecoveryPointsLook(look: (vmId: string) => SnapshotView[] | undefined): void {
    this.recoveryPoints = look;
  }

  /** A copy of the VM's configuration: what its replica is registered from. */
  configOf(nameOrId: string): VmConfig {
    return structuredClone(this.resolve(nameOrId).config);
  }

  /**
   * A replication cycle on the primary: the running VM's consistent point (consistent-point.ts,
   * tracker consumer `o.consumer`) handed to `use` under the VM's lock, so no stop, swap or move
   * runs under it; `use` commits or restores the take, the copies are removed after. An off or
   * saved VM's point is its files at rest (Start-VMFailover -Prepare's last cycle; a failover's
   * tracker started clean). `freeze`: a running VM's pause runs inside the guest's freeze (an
   * app-consistent recovery point, atConsistentPoint).
   */
  withConsistentPoint<T>(nameOrId: string, o: Omit<PointOptions, 'tmpDir' | 'pause'> & { freeze?: boolean }, use: (p: ConsistentPoint, config: VmConfig) => Promise<T>): Promise<T> {
    const e = this.resolve(nameOrId);
    return e.lock.run(async () => {
      assertLegal('Replicate', e.state, e.config.name);
      const { freeze, ...rest } = o;
      const p = e.state === 'Running' || e.state === 'Paused'
        ? await takeConsistentPoint(e, this.storage, { ...rest, tmpDir: join(e.paths.dir, 'replica-tmp'), ...(freeze ? { pause: <U>(take: () => Promise<U>) => this.atConsistentPoint(e, take) } : {}) })
        : await takeFilePoint(e, this.storage, rest);
      try {
        return await use(p, structuredClone(e.config));
      } finally {
        await p.close();
      }
    });
  }

  /**
   * A tracker consumer dropped from the VM's served drives (Remove-VMReplication), so their
   * writes stop paying for its marks. An off VM's drives keep it in their tracker files (not
   * served, so not opened here); it costs marks, never correctness: a new relationship's
   * initial replication drops and re-adds it (full).
   */
  async forgetChanges(nameOrId: string, consumer: string): Promise<void> {
    const e = this.resolve(nameOrId);
    await e.lock.run(async () => {
      for (const d of e.config.hardDrives) {
        if (this.storage.server.get(VmStorage.exportName(d))) await (await this.storage.trackDrive(d)).removeConsumer(consumer);
      }
    });
  }

  /**
   * The Replica VM of a primary's VM (same id and name), registered Off: its hard drives are
   * the replica's files the caller put in `config`, its adapters unconnected (the primary's
   * switches need not exist here), its DVD drives empty, no checkpoints.
   */
  registerReplica(config: VmConfig, what = 'Replica VM'): Promise<VmView> {
    return this.names.run(async () => {
      const vm: VmConfig = {
        ...config, parentSnapshotId: null, snapshotFileLocation: join(vmPaths(this.dataDir, config.id).dir, 'snapshots'),
        dvdDrives: config.dvdDrives.map((d) => ({ ...d, path: null })), networkAdapters: config.networkAdapters.map((a) => ({ ...a, switchName: null })),
      };
      const entry = await this.registerImported(vm, '', [], false);
      this.event('Information', 'VM_REPLICA_CREATED', `${what} created (drives ${vm.hardDrives.map((d) => d.path).join(', ')})`, entry);
      return this.view(entry);
    });
  }

  /** A Replica VM's drives re-pointed at new files (the leaves of its newest recovery point). */
  async setReplicaDrives(vmId: string, paths: Readonly<Record<string, string>>): Promise<void> {
    const e = this.resolve(vmId);
    await e.lock.run(() => this.persistNext(e, { ...e.config, hardDrives: e.config.hardDrives.map((d) => (paths[d.id] ? { ...d, path: paths[d.id]! } : d)) }));
  }

  /** Export-VMSnapshot: a VM whose state is the checkpoint's (its config, its frozen disks as a chain, its memory as saved state). */
  exportSnapshot(nameOrId: string, snapshot: string, path: string): { job: Job; result: Promise<VmView> } {
    this.checkpoints.find(this.resolve(nameOrId), snapshot); // refused before a job exists
    return this.lifecycle('ExportSnapshot', 'Export-VMSnapshot', nameOrId, async (e, h) => {
      const r = this.checkpoints.find(e, snapshot);
      const memory = this.checkpoints.memoryOf(e, r);
      const state = await this.presentStateFiles(e, stateFiles(e.paths).filter((n) => n.startsWith('OVMF_VARS')));
      const saved = basename(e.paths.savedState);
      if (memory !== null) {
        state.push({ name: saved, from: memory });
        state.push({ name: `${saved}.json`, text: JSON.stringify({ uptimeMs: r.uptimeMs, savedAt: r.createdAt, ...(r.boot ? { boot: r.boot } : {}) } satisfies SavedInfo) });
      }
      const config: VmConfig = { ...r.config, id: e.config.id, name: e.config.name, parentSnapshotId: null };
      const layout = await writeExport(path, { config, checkpoints: [], state }, chainOf, h);
      this.event('Information', 'VM_SNAPSHOT_EXPORTED', `Checkpoint '${r.name}' exported as a VM to ${layout.root}`, e);
    });
  }

  /** The VM folder's files among `names` that exist, and for generation 2 the manifest of its firmware variables. */
  private async presentStateFiles(e: VmEntry, names: string[]): Promise<{ name: string; from?: string; text?: string }[]> {
    const present = [];
    for (const n of names) if (await exists(join(e.paths.dir, n))) present.push({ name: n, from: join(e.paths.dir, n) });
    if (e.config.generation !== 2) return present;
    const vars = present.filter((s) => s.name.startsWith('OVMF_VARS')).map((s) => s.name);
    return [...present, { name: FIRMWARE_MANIFEST, text: JSON.stringify({ files: vars }) }];
  }

  /** A drive file's chain: a served one as the block server opened it, else opened read-only. */
  private chainOfDrive(e: VmEntry, file: string): Promise<string[]> {
    const d = e.config.hardDrives.find((x) => x.path === file);
    const served = d && this.storage.server.get(VmStorage.exportName(d));
    return served ? Promise.resolve(chainFiles(served.disk)) : chainOf(file);
  }

  /** Compare-VM -Path: what would keep the export from being imported here, each with its fix. */
  async compareVm(path: string, opts: ImportOptions, report?: VmCompatibilityReport): Promise<VmCompatibilityReport> {
    return (await planImport(path, opts, this.importFacts(), report)).report;
  }

  /** Import-VM: register in place, -Copy, or -Copy -GenerateNewId; refused with the report while it lists anything. */
  importVm(path: string, opts: ImportOptions, report?: VmCompatibilityReport): { job: Job; result: Promise<VmView> } {
    return this.jobs.run('Import-VM', undefined, async (h) => {
      h.progress(2, 'Comparing the export with this host');
      const plan = await planImport(path, opts, this.importFacts(), report);
      const found = plan.report.Incompatibilities;
      if (found.length > 0) {
        throw new VmhostError('IMPORT_INCOMPATIBLE', `Import-VM: ${found.length} incompatibilit${found.length === 1 ? 'y' : 'ies'}: ${found.map((i) => `${i.Message} (fix: ${i.Fix})`).join('; ')}`,
          { path: plan.layout.config, report: JSON.stringify(plan.report) });
      }
      const entry = await executeImport(plan, h, (vm, stateDir, state, saved) => this.names.run(() => this.registerImported(vm, stateDir, state, saved)));
      this.event('Information', 'VM_IMPORTED', `VM imported from ${plan.layout.root} (${plan.report.Copy ? (plan.report.GenerateNewId ? 'copied with a new id' : 'copied') : 'registered in place'})`, entry);
      return this.view(entry);
    });
  }

  /** Under the names lock: the id and name are checked again (a New-VM may have raced the copy), then the VM exists. */
  private async registerImported(vm: VmConfig, stateDir: string, state: readonly string[], saved: boolean): Promise<VmEntry> {
    if (this.vms.has(vm.id)) throw new VmhostError('ALREADY_EXISTS', `A virtual machine with Id ${vm.id} already exists`, { vm: vm.id });
    this.assertNameFree(vm.name);
    checkConfig(vm, this.facts.logicalProcessors);
    const entry = new VmEntry(vm, vmPaths(this.dataDir, vm.id));
    await mkdir(entry.paths.dir, { recursive: true });
    try {
      for (const n of state) await copyFile(join(stateDir, n), join(entry.paths.dir, n));
      await this.persist(entry);
    } catch (err) {
      await rm(entry.paths.dir, { recursive: true, force: true });
      throw err;
    }
    this.vms.set(vm.id, entry);
    await this.checkpoints.load(entry);
    await this.network.attach(entry);
    const info = saved ? await readJson<SavedInfo>(`${entry.paths.savedState}.json`).catch(() => undefined) : undefined;
    if (info) {
      await entry.lock.run(async (held) => entry.machine.transition(held, 'Saved'));
      entry.uptimeBaseMs = info.uptimeMs;
      entry.bootSource = info.boot;
    }
    return entry;
  }

  private importFacts(): ImportHostFacts {
    return {
      dataDir: this.dataDir,
      host: { logicalProcessors: this.facts.logicalProcessors, memoryBytes: this.memoryCapacity() - this.memoryInUse(), generations: [1, 2] },
      vms: [...this.vms.values()].map((e) => ({ id: e.config.id, name: e.config.name, macs: e.config.networkAdapters.map((a) => a.mac) })),
      switches: this.network.switches.list().map((s) => ({
        name: String(s.Name), type: String(s.SwitchType), degraded: s.Status === 'Degraded', netAdapterName: (s.NetAdapterName as string | null) ?? null,
      })),
      newMac: (also) => this.network.dynamicMac(also),
    };
  }

  // ---- guest ------------------------------------------------------------------------

  async invoke(nameOrId: string, script: string, timeoutMs: number): Promise<InvokeResult> {
    const e = this.resolve(nameOrId);
    assertLegal('InvokeCommand', e.state, e.config.name);
    return this.live(e).exec(script, timeoutMs);
  }

  /** Copy-VMFile -FileSource Host: a job, since a large file takes a while to cross virtio-serial. */
  async copyFile(nameOrId: string, p: CopyFileParams): Promise<{ job: Job; result: Promise<CopyFileResult> }> {
    const e = this.resolve(nameOrId);
    const size = await checkCopyFile(p, e.config.name, e.config.integrationServices['Guest Service Interface']);
    assertLegal('CopyFile', e.state, e.config.name);
    const vm = { id: e.config.id, name: e.config.name };
    return this.jobs.run('Copy-VMFile', vm, async (h) => {
      const r = await copyToGuest(this.live(e), p, vm, size, h);
      this.event('Information', 'VM_FILE_COPIED', `Copied ${p.SourcePath} to ${p.DestinationPath} in the guest (${size} bytes in ${r.ElapsedMilliseconds} ms)`, e);
      return r;
    });
  }

  integrationServices(nameOrId: string): IntegrationServiceView[] {
    const e = this.resolve(nameOrId);
    const hb = this.view(e).Heartbeat;
    const contact = e.state === 'Running' && hb === 'OK';
    return INTEGRATION_SERVICES.map((name) => {
      const enabled = serviceEnabled(e.config, name);
      let desc = 'OK';
      if (!enabled) desc = '';
      else if (e.state !== 'Running' && e.state !== 'Paused') desc = '';
      else if (!contact) desc = hb === 'LostCommunication' ? 'Lost Communication' : 'No Contact';
      return {
        VMName: e.config.name, VMId: e.config.id, Name: name, Enabled: enabled,
        PrimaryStatusDescription: desc, OperationalStatus: desc === 'OK' ? 'Ok' : desc,
      };
    });
  }

  /** Debug-VM -InjectNonMaskableInterrupt. */
  async injectNmi(nameOrId: string): Promise<void> {
    const e = this.resolve(nameOrId);
    assertLegal('Debug', e.state, e.config.name);
    await this.live(e).injectNmi();
    this.event('Information', 'VM_NMI_INJECTED', 'Non-maskable interrupt injected (Debug-VM)', e);
  }

  async setIntegrationService(nameOrId: string, service: string, enabled: boolean): Promise<IntegrationServiceView[]> {
    const e = this.resolve(nameOrId);
    const name = INTEGRATION_SERVICES.find((s) => s.toLowerCase() === service.toLowerCase());
    if (!name) throw invalid('Name', `'${service}' is not an integration service (${INTEGRATION_SERVICES.join(', ')})`, e.config.name);
    await e.lock.run(async () => {
      e.config = { ...e.config, integrationServices: { ...e.config.integrationServices, [name]: enabled } };
      await this.persist(e);
    });
    this.event('Information', 'VM_INTEGRATION_SERVICE', `${name} ${enabled ? 'enabled' : 'disabled'}`, e);
    return this.integrationServices(nameOrId);
  }

  async serialLog(nameOrId: string, tailBytes: number): Promise<string> {
    const e = this.resolve(nameOrId);
    return readTail(e.paths.serialLog, tailBytes);
  }

  hostView(): Record<string, unknown> {
    const running = [...this.vms.values()].filter((e) => e.state === 'Running' || e.state === 'Paused').length;
    return {
      ComputerName: this.facts.computerName,
      LogicalProcessorCount: this.facts.logicalProcessors,
      MemoryCapacity: this.memoryCapacity(),
      FreeMemory: freemem(),
      VirtualMachinePath: join(this.dataDir, 'vms'),
      VirtualMachineCount: this.vms.size,
      RunningVirtualMachineCount: running,
      Accelerator: this.accelerator.toUpperCase(),
      QemuVersion: this.facts.qemuVersion,
      Version: this.facts.vmhostVersion,
      CpuModel: cpus()[0]?.model ?? 'unknown',
      DataDir: this.dataDir,
      MacAddressMinimum: this.identity.macPool.minimum,
      MacAddressMaximum: this.identity.macPool.maximum,
      ...this.migration,
      ...this.metering.hostSettings(),
    };
  }

  /** Set-VMHost -MacAddressMinimum/-MacAddressMaximum (host-identity.ts validates and keeps it). */
  async setMacPool(change: MacPoolChange): Promise<Record<string, unknown>> {
    const p = await this.identity.setMacPool(change);
    this.event('Information', 'HOST_MAC_POOL_CHANGED', `Dynamic MAC address pool set to ${colonMac(p.minimum)}–${colonMac(p.maximum)} (${macPoolSize(p)} addresses)`);
    return this.hostView();
  }

  /** What VMs may have on this host (--memory-capacity, else the machine's memory): Get-VMHost's MemoryCapacity. */
  memoryCapacity(): number {
    return this.options.memoryCapacity ?? totalmem();
  }

  /**
   * Memory kept back for the host itself: none under --memory-capacity (the cap already is
   * what VMs may have), else a tenth of the machine's, at most 2 GB.
   */
  private memoryReserve(): number {
    return this.options.memoryCapacity !== undefined ? 0 : Math.min(2 * 1024 ** 3, Math.floor(totalmem() / 10));
  }

  /** Startup memory of the VMs that run (or are about to): what a moved-in VM must fit beside. */
  private memoryInUse(): number {
    let used = 0;
    for (const e of this.vms.values()) if (e.state !== 'Off' && e.state !== 'Saved') used += e.config.memoryStartupBytes;
    return used;
  }

  // ---- live migration (Move-VM) --------------------------------------------------------

  /** Set-VMHost's migration parameters, Enable-/Disable-VMMigration. */
  async setMigrationSettings(patch: Partial<MigrationSettings>): Promise<Record<string, unknown>> {
    const next = applyMigrationSettings(this.migration, patch);
    await saveMigrationSettings(this.dataDir, next, this.migrationNetworks);
    this.migration = next;
    this.moveOut.queue.setLimit(next.MaximumVirtualMachineMigrations);
    this.storageQueue.setLimit(next.MaximumStorageMigrations);
    this.event('Information', 'HOST_MIGRATION_SETTINGS', `Live migration ${next.VirtualMachineMigrationEnabled ? 'enabled' : 'disabled'}: up to ${next.MaximumVirtualMachineMigrations} at once, ${next.VirtualMachineMigrationPerformanceOption}`);
    return this.hostView();
  }

  private get networkPolicy(): NetworkPolicy {
    return { useAny: this.migration.UseAnyNetworkForMigration, networks: this.migrationNetworks };
  }

  /** Get-VMMigrationNetwork. */
  getMigrationNetworks(filter: { Subnet?: string; Priority?: number }): MigrationNetwork[] {
    return selectNetworks(this.migrationNetworks, filter);
  }

  addMigrationNetwork(subnet: string, priority?: number): Promise<MigrationNetwork[]> {
    return this.changeMigrationNetworks('changed (added one)', (l) => addNetwork(l, subnet, priority));
  }

  setMigrationNetwork(subnet: string, change: { NewSubnet?: string; NewPriority?: number }): Promise<MigrationNetwork[]> {
    return this.changeMigrationNetworks('changed', (l) => setNetwork(l, subnet, change));
  }

  removeMigrationNetwork(subnet: string): Promise<MigrationNetwork[]> {
    return this.changeMigrationNetworks('changed (removed one)', (l) => removeNetwork(l, subnet));
  }

  /** Add-/Set-/Remove-VMMigrationNetwork: the list after `change` (migration-networks.ts validates), saved with the settings. */
  private async changeMigrationNetworks(what: string, change: (list: MigrationNetwork[]) => MigrationNetwork[]): Promise<MigrationNetwork[]> {
    const next = change(this.migrationNetworks);
    await saveMigrationSettings(this.dataDir, this.migration, next);
    this.migrationNetworks = next;
    this.event('Information', 'HOST_MIGRATION_NETWORKS', `Migration networks ${what}: ${next.map((n) => `${n.Subnet} (priority ${n.Priority})`).join(', ') || 'none'}`);
    return next;
  }

  /** Destination: a single-use ticket for moving VM `vmId` here, for a caller holding this host's credential. */
  issueMoveTicket(vmId: string): IssuedTicket {
    if (!this.migration.VirtualMachineMigrationEnabled) {
      throw new VmhostError('MIGRATION_DISABLED', 'Virtual machine migration is disabled on this host: run Enable-VMMigration here first', { vm: vmId });
    }
    return this.tickets.issue(vmId, Date.now());
  }

  /**
   * Set by a cluster node (cluster/cluster-node.ts): a move ticket from another node of the cluster
   * is checked by it, and the VM arrives as a clustered one (vm-move-in.ts, ClusteredArrival).
   */
  clusterArrivals: ((ticket: string, vmId: string) => Promise<ClusteredArrival>) | undefined;

  /** Destination: the source presents the ticket; the VM is staged, not registered (vm-move-in.ts). */
  async prepareIncoming(ticket: string, body: MovePrepare): Promise<PreparedMove> {
    let arrival: ClusteredArrival | undefined;
    if (ticket.startsWith(CLUSTER_TICKET_PREFIX) && this.clusterArrivals) arrival = await this.clusterArrivals(ticket, body.config.id);
    else this.tickets.redeem(ticket, body.config.id, Date.now());
    try {
      return await this.prepareArrival(body, arrival);
    } catch (e) {
      arrival?.done();
      throw e;
    }
  }

  private prepareArrival(body: MovePrepare, arrival: ClusteredArrival | undefined): Promise<PreparedMove> {
    // Checked as any vm.json this host reads: an older config is upgraded, a newer one refused (CONFIG_VERSION_UNSUPPORTED).
    const { config } = upgradeConfig(body.config as unknown as RawConfig, { snapshotDir: join(vmPaths(this.dataDir, body.config.id).dir, 'snapshots') }, `moved VM '${body.config.name}'`);
    checkConfig(config, this.facts.logicalProcessors);
    // The VM's checkpoint folder here (its records and memory arrive into it) is -SnapshotFilePath or this host's default.
    if (body.snapshotFilePath !== undefined && !isAbsolute(body.snapshotFilePath)) throw invalid('SnapshotFilePath', `'${body.snapshotFilePath}' is not an absolute path`, config.name);
    // A clustered VM keeps its folder (the shared one), checkpoint folder included.
    const local = arrival ? config : { ...config, snapshotFileLocation: body.snapshotFilePath ?? join(vmPaths(this.dataDir, config.id).dir, 'snapshots') };
    return this.names.run(() => this.moveIn.prepare({ ...body, config: local }, arrival));
  }

  /** Destination, at commit: the moved VM joins the registry, Running on the QEMU that received it. */
  private registerMovedIn(e: VmEntry, rt: VmRuntime, uptimeMs: number, boot: BootSourceKind): Promise<VmView> {
    return this.names.run(async () => {
      if (this.vms.has(e.config.id)) throw new VmhostError('ALREADY_EXISTS', `A virtual machine with Id ${e.config.id} already exists`, { vm: e.config.id });
      this.assertNameFree(e.config.name);
      await this.persist(e);
      this.vms.set(e.config.id, e);
      this.adopt(e, rt, uptimeMs);
      e.runningSinceMs = Date.now();
      e.bootSource = boot;
      await writeFileAtomic(e.paths.runtime, JSON.stringify(rt.record(e.uptimeBaseMs, e.runningSinceMs), null, 2));
      await this.checkpoints.load(e);
      await e.lock.run(async (held) => e.machine.transition(held, 'Running'));
      return this.view(e);
    });
  }

  /** The web console's Move: a ticket from the destination with the user's credential there (move-delegation.ts). */
  delegatedMoveTicket(nameOrId: string, destination: string, credential: string): Promise<string> {
    return delegatedTicket(destination, credential, this.resolve(nameOrId).config.id, this.moveTrust);
  }

  /** Move-VM: a job (vm-move-out.ts). */
  move(nameOrId: string, req: MoveRequest): { job: Job; result: Promise<VmView> } {
    return this.moveOut.move(nameOrId, req);
  }

  private event(level: EventLevel, code: string, message: string, e?: VmEntry): void {
    this.events.emit({ Level: level, Code: code, Message: message, VMId: e?.config.id, VMName: e?.config.name });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

/** `path` is `dir` or below it. */
function isInside(dir: string, path: string): boolean {
  const r = relative(resolve(dir), resolve(path));
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

async function readTail(path: string, bytes: number): Promise<string> {
  const fh = await open(path, 'r').catch(() => undefined);
  if (!fh) return '';
  try {
    const size = (await fh.stat()).size;
    const len = Math.min(size, bytes);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    return buf.toString('utf8');
  } finally {
    await fh.close();
  }
}

