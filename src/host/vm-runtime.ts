// The running side of one VM: its QEMU process (qemu/), its integration-services agent
// (guest/), heartbeat and KVP polling, CPU usage sampling. The host decides what the VM's
// state is; this class only does things to the process and reports what it sees.
import { EventEmitter } from 'node:events';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { VmhostError, isVmhostError } from '../common/index.ts';
import {
  QemuProcess, changeDvdMedia, checkStateFile, ensureVarsFile, findOvmf, hotplugScsiDisk, hubNicArgs, injectNmi, probeAccelerator, refreshNbdDiskSize,
  replugNicStream, restoreIncomingUri, readMemory, setBalloonTarget, setVirtioMemRequested, pollBalloonStats, balloonStats, type MemoryReading, saveStateToFile, unplugDisk, waitForIncoming, startIncoming, migrateLive,
  type Accelerator, type DiskSpec, type DiskGeometry, type HubNic, type QemuVmSpec, type MigrationTuning, type LiveMigrationResult, type MigrationInfo,
} from '../qemu/index.ts';
import { AgentClient, ensureGuestImage, type WriteFileOptions } from '../guest/index.ts';
import type { VmConfig } from './vm-config.ts';
import type { MemoryPlan } from './vm-memory.ts';
import type { VmPaths } from './vm-paths.ts';
import type { HeartbeatStatus } from './vm-view.ts';
import type { BootSourceKind } from './boot-order.ts';
import { BootWatch } from './boot-watch.ts';
import { TimeSync, type TimeSyncCorrection } from './time-sync.ts';

/** The guest's memory as it reports it (vm-memory.ts turns it into demand). */
export interface GuestMemory {
  totalBytes: number;
  availableBytes: number;
  /** PSI memory "some" avg10 (%), from an agent on a kernel with PSI. */
  psiSomeAvg10?: number;
  source: 'agent' | 'balloon';
}

/** What runtime.json holds so the next daemon can re-attach. */
export interface RuntimeRecord {
  pid: number;
  uuid: string;
  qmpSocket: string;
  agentSocket: string;
  startedAtMs: number;
  uptimeBaseMs: number;
}

export interface ExitInfo {
  /** QEMU reported a guest-initiated shutdown before exiting. */
  guestShutdown: boolean;
  detail: string;
}

const HEARTBEAT_MS = 2000;
const HEARTBEAT_MISSES = 3;
const KVP_REFRESH_MS = 10_000;
const CLOCK_TICKS = 100;

let accel: Promise<Accelerator> | undefined;

interface RuntimeEvents {
  heartbeat: [HeartbeatStatus];
  /** A disk's I/O failed and QEMU stopped the VM (werror/rerror=stop). */
  'io-error': [{ device: string; operation: string; reason: string }];
  /** The firmware reported that it could not boot (nothing bootable, secure boot refusal). */
  'boot-failed': [string];
  /** Time Synchronization stepped the guest's clock by more than a second. */
  'time-sync': [TimeSyncCorrection];
}

export class VmRuntime extends EventEmitter<RuntimeEvents> {
  readonly exited: Promise<ExitInfo>;
  private hb: HeartbeatStatus = 'NoContact';
  private misses = 0;
  /** QEMU's RESET events: each is a new boot of the guest (a reboot from inside, Restart-VM, a panic's reboot). */
  private resetCount = 0;
  private guestKvp: Record<string, unknown> = {};
  private kvpAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private guestShutdown = false;
  private cpuSample: { at: number; ticks: number; usage: number } | undefined;
  private bootWatch: BootWatch | undefined;
  private readonly timeSync: TimeSync;
  /** Cleared when the guest's agent answers meminfo with UNKNOWN_OP (an older agent). */
  private agentHasMeminfo = true;
  private balloonStatsOn = false;
  /** Whether the Time Synchronization service is offered; the host points this at the VM's live config. */
  timeSyncEnabled: () => boolean = () => true;
  /**
   * When QEMU last stopped and resumed the guest (epoch ms, QEMU's own event timestamps): a move's
   * hand-over is timed from the source's STOP to the destination's RESUME (both daemons' clocks
   * are one on a host, and NTP-close across hosts).
   */
  readonly runStateAt: { STOP?: number; RESUME?: number } = {};

  private constructor(private readonly proc: QemuProcess, private readonly agent: AgentClient, private readonly uuid: string, private readonly paths: VmPaths) {
    super();
    proc.qmp.on('event', (e) => {
      if (e.event === 'STOP' || e.event === 'RESUME') this.runStateAt[e.event] = e.timestamp.seconds * 1000 + e.timestamp.microseconds / 1000;
      if (e.event === 'SHUTDOWN' && (e.data as { guest?: boolean } | undefined)?.guest) this.guestShutdown = true;
      // The agent that answered went with the old boot: no contact until the new boot's agent answers (the pings tell).
      if (e.event === 'RESET') { this.resetCount++; this.setHeartbeat('NoContact'); }
      if (e.event === 'BLOCK_IO_ERROR') {
        const d = e.data as { device: string; 'node-name'?: string; operation: string; action: string; reason: string };
        if (d.action === 'stop') this.emit('io-error', { device: d['node-name'] ?? d.device, operation: d.operation, reason: d.reason });
      }
    });
    this.exited = proc.exited.then((x) => {
      this.stopWatching();
      const detail = x.signal ? `killed by ${x.signal}` : x.code !== null ? `exit code ${x.code}` : 'process gone';
      return { guestShutdown: this.guestShutdown, detail };
    });
    this.timeSync = new TimeSync(agent, () => this.timeSyncEnabled(), (c) => this.emit('time-sync', c));
    agent.on('ready', () => {
      this.bootWatch?.stop();
      this.setHeartbeat('OK');
      void this.timeSync.ready();
    });
    void agent.connect().catch(() => undefined);
    this.timer = setInterval(() => void this.poll(), HEARTBEAT_MS);
    this.timer.unref();
  }

  /** KVM only when a probe guest really runs under it; cached per process. */
  static accelerator(): Promise<Accelerator> {
    accel ??= probeAccelerator();
    return accel;
  }

  static async launch(o: {
    config: VmConfig; paths: VmPaths; accelerator: Accelerator; disks: DiskSpec[]; nics?: HubNic[]; restoreFrom?: string; boot: BootSourceKind;
    floppyBootIndex?: number; runAs?: string;
    /** The memory layout (vm-memory.ts); absent: the startup memory, static. */
    memory?: MemoryPlan;
    /** Move-VM's destination: QEMU waits for a migration (`listenForMigration`) and stays paused after it until `resume`. */
    incomingMigration?: boolean;
  }): Promise<VmRuntime> {
    const { config, paths } = o;
    await mkdir(paths.sockets, { recursive: true });
    // QEMU 7.2 waits forever on a missing or empty exec: stream: check the file first.
    // A saved VM also comes back in the RAM layout it was saved with (a state from before the TCG pad, or from KVM, has none).
    const savedPad = o.restoreFrom ? await checkStateFile(o.restoreFrom) : undefined;
    const spec = await buildSpec(config, paths, o.accelerator, o.disks, o.boot, o.floppyBootIndex);
    if (savedPad !== undefined) spec.ramPadBytes = savedPad;
    if (o.memory) Object.assign(spec, { memoryStartupBytes: o.memory.bootBytes, virtioMem: o.memory.virtioMem, balloonDeflateOnOom: o.memory.deflateOnOom });
    // NICs go through a hub so their switch socket can be re-plugged (qemu/hotplug.ts).
    const nics = o.nics ?? [];
    const extraArgs = nics.flatMap((n) => hubNicArgs(n, config.generation));
    const launch = {
      ...(o.restoreFrom ? { incoming: restoreIncomingUri(o.restoreFrom) } : {}),
      ...(o.incomingMigration ? { incoming: 'defer', startPaused: true } : {}), extraArgs, bootIndexedExtras: nics.some((n) => n.bootIndex !== undefined),
      runAs: o.runAs,
    };
    // Watch the firmware from where its output files end now: serial.log is appended to;
    // firmware.log holds this boot only (QEMU truncates it; removed first so no old line counts).
    await rm(paths.firmwareLog, { force: true });
    const watch = o.boot === 'Firmware' && !o.restoreFrom && !o.incomingMigration ? await BootWatch.mark([paths.serialLog, paths.firmwareLog]) : undefined;
    const proc = await QemuProcess.startVm(spec, { launch, logFile: paths.qemuLog });
    const rt = new VmRuntime(proc, new AgentClient({ path: paths.agentSocket, vm: config.name }), config.id, paths);
    rt.bootWatch = watch?.begin((r) => rt.emit('boot-failed', r));
    try {
      // Save-VM pauses before saving; a restored VM comes back running, as in Hyper-V.
      if (o.restoreFrom) await waitForIncoming(proc.qmp, { resume: true });
    } catch (e) {
      await rt.kill();
      throw e;
    }
    return rt;
  }

  /** Re-attach after a daemon restart; undefined when that QEMU is gone (or not ours). */
  static async reattach(r: RuntimeRecord, config: VmConfig, paths: VmPaths): Promise<VmRuntime | undefined> {
    try {
      const proc = await QemuProcess.attach({ pid: r.pid, qmpSocket: r.qmpSocket, uuid: r.uuid });
      return new VmRuntime(proc, new AgentClient({ path: r.agentSocket, vm: config.name }), config.id, paths);
    } catch {
      return undefined;
    }
  }

  get pid(): number {
    return this.proc.pid;
  }

  private vcpus: Promise<number[]> | undefined;

  /** Host thread ids of the virtual processors (QMP query-cpus-fast; fixed for the process's life): their CPU time is the guest's. */
  vcpuThreadIds(): Promise<number[]> {
    this.vcpus ??= this.proc.qmp.execute('query-cpus-fast').then((cpus) => (cpus as { 'thread-id': number }[]).map((c) => c['thread-id']));
    this.vcpus.catch(() => { this.vcpus = undefined; });
    return this.vcpus;
  }

  record(uptimeBaseMs: number, startedAtMs: number): RuntimeRecord {
    return { pid: this.proc.pid, uuid: this.uuid, qmpSocket: this.paths.qmpSocket, agentSocket: this.paths.agentSocket, startedAtMs, uptimeBaseMs };
  }

  async status(): Promise<'running' | 'paused' | 'io-error' | 'other'> {
    const { status } = await this.proc.qmp.execute('query-status');
    return status === 'running' || status === 'paused' || status === 'io-error' ? status : 'other';
  }

  heartbeat(): HeartbeatStatus {
    return this.hb;
  }

  /** Which boot of the guest this is in the process: QEMU's resets so far. */
  get resets(): number {
    return this.resetCount;
  }

  kvp(): Record<string, unknown> {
    return this.guestKvp;
  }

  private setHeartbeat(s: HeartbeatStatus): void {
    if (s === 'OK') this.misses = 0;
    if (this.hb === s) return;
    this.hb = s;
    this.emit('heartbeat', s);
  }

  /** Heartbeat ping; KVP refresh on first contact and every KVP_REFRESH_MS. */
  private async poll(): Promise<void> {
    if (!this.agent.ready) {
      if (this.hb === 'OK' && ++this.misses >= HEARTBEAT_MISSES) this.setHeartbeat('LostCommunication');
      return;
    }
    try {
      const sentAtMs = Date.now();
      const pong = await this.agent.ping(HEARTBEAT_MS);
      void this.timeSync.sample({ sentAtMs, receivedAtMs: Date.now(), guestTimeMs: pong.timeMs });
      this.setHeartbeat('OK');
      if (Date.now() - this.kvpAt > KVP_REFRESH_MS) {
        this.guestKvp = { ...(await this.agent.kvp(HEARTBEAT_MS)) };
        this.kvpAt = Date.now();
      }
    } catch {
      if (++this.misses >= HEARTBEAT_MISSES) this.setHeartbeat('LostCommunication');
    }
  }

  /** Percent of the whole host's CPU time this VM's QEMU used since the last sample (≥1 s ago). */
  cpuUsagePercent(logicalProcessors: number): number {
    const now = Date.now();
    if (this.cpuSample && now - this.cpuSample.at < 1000) return this.cpuSample.usage;
    void readFile(`/proc/${this.proc.pid}/stat`, 'utf8').then((stat) => {
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]);
      const prev = this.cpuSample;
      const usage = prev ? Math.min(100, Math.round(((ticks - prev.ticks) / CLOCK_TICKS / ((now - prev.at) / 1000) / logicalProcessors) * 100)) : 0;
      this.cpuSample = { at: now, ticks, usage: Math.max(0, usage) };
    }, () => undefined);
    return this.cpuSample?.usage ?? 0;
  }

  // ---- dynamic memory (vm-memory.ts decides; these only read and carry out) ----

  async readMemory(): Promise<MemoryReading> {
    return readMemory(this.proc.qmp);
  }

  /** The boot RAM's balloon target, and the plugged size wanted of each virtio-mem device. */
  async setMemory(balloonBytes: number | undefined, requested: Record<string, number>): Promise<void> {
    if (balloonBytes !== undefined) await setBalloonTarget(this.proc.qmp, balloonBytes);
    for (const [id, bytes] of Object.entries(requested)) await setVirtioMemRequested(this.proc.qmp, id, bytes);
  }

  /**
   * The guest's memory as it sees it: from the agent's meminfo (with PSI), else from the
   * balloon driver's statistics (an agent without the op, or none); undefined when neither says.
   */
  async guestMemory(): Promise<GuestMemory | undefined> {
    if (this.agent.ready && this.agentHasMeminfo) {
      try {
        const m = await this.agent.meminfo(HEARTBEAT_MS);
        return { totalBytes: m.memTotalBytes, availableBytes: m.memAvailableBytes, psiSomeAvg10: m.psiSomeAvg10, source: 'agent' };
      } catch (err) {
        if (isVmhostError(err) && err.context.agentCode === 'UNKNOWN_OP') this.agentHasMeminfo = false;
      }
    }
    if (!this.balloonStatsOn) {
      this.balloonStatsOn = true;
      await pollBalloonStats(this.proc.qmp, 1);
    }
    const b = await balloonStats(this.proc.qmp);
    return b && { totalBytes: b.totalBytes, availableBytes: b.availableBytes, source: 'balloon' };
  }

  async pause(): Promise<void> {
    await this.proc.qmp.execute('stop');
  }

  async resume(): Promise<void> {
    await this.proc.qmp.execute('cont');
    // The guest's clock stood still while it was paused.
    void this.timeSync.resumed();
  }

  async reset(): Promise<void> {
    await this.proc.qmp.execute('system_reset');
  }

  async acpiPowerdown(): Promise<void> {
    await this.proc.qmp.execute('system_powerdown');
  }

  /** Ask the agent to shut the guest down; false when the agent cannot be reached. */
  async agentShutdown(): Promise<boolean> {
    if (!this.agent.ready) return false;
    try {
      await this.agent.shutdown();
      return true;
    } catch {
      return false;
    }
  }

  async exec(script: string, timeoutMs: number): Promise<{ stdout: Buffer; stderr: Buffer; exitCode: number }> {
    if (!this.agent.ready) {
      throw new VmhostError('AGENT_NOT_READY', 'the guest\'s integration services agent is not responding (is the guest still booting?)', { op: 'exec' });
    }
    const r = await this.agent.exec(script, { timeoutMs });
    if (r.timedOut) throw new VmhostError('TIMEOUT', `the command did not finish within ${timeoutMs / 1000} s and was killed`, { op: 'exec' });
    // A script killed by a signal exits like sh reports it: 128 + signal.
    return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? 128 + (r.signal ?? 0) };
  }

  /** Set-VMDvdDrive -Path on a running VM: insert, swap or (null) eject the ISO. */
  async changeDvd(deviceId: string, path: string | null): Promise<void> {
    await changeDvdMedia(this.proc.qmp, deviceId, path);
  }

  async injectNmi(): Promise<void> {
    await injectNmi(this.proc.qmp);
  }

  /** The agent when it answers (guest-freeze.ts freezes the file systems through it), else undefined. */
  readyAgent(): AgentClient | undefined {
    return this.agent.ready ? this.agent : undefined;
  }

  /** Copy-VMFile: a host file into the guest through the agent, in chunks. */
  async copyFile(source: string, guestPath: string, o: WriteFileOptions): Promise<{ bytes: number }> {
    if (!this.agent.ready) {
      throw new VmhostError('AGENT_NOT_READY', 'the guest\'s integration services agent is not responding (is the guest still booting?)', { op: 'copy-file' });
    }
    return this.agent.writeFile(source, guestPath, o);
  }

  async hotplugDisk(d: DiskSpec): Promise<void> {
    await hotplugScsiDisk(this.proc.qmp, d);
  }

  /** Connect a NIC's stream netdev to a (new or re-listening) switch port socket, or drop it (null). */
  async replugNic(nicId: string, hub: number, socketPath: string | null): Promise<void> {
    await replugNicStream(this.proc.qmp, nicId, hub, socketPath);
  }

  async unplugDisk(diskId: string): Promise<void> {
    await unplugDisk(this.proc.qmp, diskId, await this.nbdGeneration(diskId));
  }

  /** After the block server resized a disk's export: the guest sees the new size. */
  async refreshDiskSize(d: DiskSpec, newSize: number): Promise<void> {
    if (d.source.kind !== 'nbd') return;
    await refreshNbdDiskSize(this.proc.qmp, d.id, d.source, d.readOnly ?? false, await this.nbdGeneration(d.id), newSize);
  }

  /** Which NBD connection a disk uses now (each resize swaps it), asked of QEMU so a re-attached daemon knows too. */
  private async nbdGeneration(diskId: string): Promise<number> {
    const nodes = (await this.proc.qmp.executeRaw('query-named-block-nodes', { flat: true })) as { 'node-name': string }[];
    const re = new RegExp(`^${diskId}-nbd(\\d+)$`);
    for (const n of nodes) {
      const m = re.exec(n['node-name']);
      if (m) return Number(m[1]);
    }
    throw new VmhostError('NOT_FOUND', `disk ${diskId} has no NBD connection in QEMU`, { op: 'nbd-generation' });
  }

  /** `at`: where the save socket goes when QEMU runs as another user (save-state.ts). */
  async saveState(file: string, progress: (percent: number) => void, at?: { socketDir: string; socketGroup: number }): Promise<void> {
    await saveStateToFile(this.proc.qmp, file, {
      ...at,
      onProgress: (m) => {
        const ram = m.ram;
        if (ram && ram.total > 0) progress((100 * (ram.total - ram.remaining)) / ram.total);
      },
    });
  }

  /** Move-VM's destination: listen for the source's stream on `uri` (QEMU was launched with incomingMigration). */
  async listenForMigration(uri: string, tuning: MigrationTuning): Promise<number | undefined> {
    return startIncoming(this.proc.qmp, uri, tuning);
  }

  /** Move-VM's destination: the whole state has arrived (QEMU is paused, -S, until `resume`). */
  async incomingDone(timeoutMs: number): Promise<void> {
    await waitForIncoming(this.proc.qmp, { timeoutMs });
  }

  /** Move-VM's source: pre-copy to `uri` until QEMU stops the VM for the last round; it is then 'postmigrate' (resume to undo). */
  async migrateTo(uri: string, tuning: MigrationTuning, onProgress: (i: MigrationInfo) => void, signal: AbortSignal): Promise<LiveMigrationResult> {
    return migrateLive(this.proc.qmp, uri, tuning, { onProgress, signal });
  }

  /** A hard disk device's CHS geometry as QEMU settled it (Move-VM's destination must not guess it from the disk). */
  async diskGeometry(deviceId: string): Promise<DiskGeometry> {
    const get = async (property: string) => Number(await this.proc.qmp.executeRaw('qom-get', { path: `/machine/peripheral/${deviceId}`, property }));
    return { cyls: await get('cyls'), heads: await get('heads'), secs: await get('secs') };
  }

  /** After a move: the VM's MACs announced (RARP from QEMU) so switches and peers learn where it is now. */
  async announce(): Promise<void> {
    await this.proc.qmp.executeRaw('announce-self', { initial: 50, max: 550, rounds: 5, step: 100 });
  }

  async quit(): Promise<void> {
    await this.proc.quit();
  }

  async kill(): Promise<void> {
    this.proc.kill('SIGKILL');
    await this.proc.exited;
  }

  private stopWatching(): void {
    this.bootWatch?.stop();
    clearInterval(this.timer);
    this.timer = undefined;
    this.agent.close();
  }

  /** Stop watching without touching QEMU (daemon shutdown): the VM keeps running. */
  detach(): void {
    this.stopWatching();
    void this.proc.detach();
  }
}

/** Hostnames allow letters, digits and '-': the VM name is squeezed into that for the guest. */
function guestHostname(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63) || 'vmhost-guest';
}

async function buildSpec(config: VmConfig, paths: VmPaths, accelerator: Accelerator, disks: DiskSpec[], boot: BootSourceKind, floppyBootIndex?: number): Promise<QemuVmSpec> {
  let kernelBoot: QemuVmSpec['kernelBoot'];
  if (boot === 'TestGuest') {
    const image = await ensureGuestImage();
    kernelBoot = {
      kernelPath: image.kernel, initrdPath: image.initrd,
      // swiotlb=noforce: a machine with a memory hotplug region (dynamic memory's virtio-mem)
      // reaches above 4 GB, and the kernel would then set 64 MB of bounce buffers aside — half
      // of a 128 MB minimum — that no device here needs (virtio DMAs anywhere).
      append: `console=ttyS0 quiet panic=-1 swiotlb=noforce vmhost.hostname=${guestHostname(config.name)}`,
    };
  } else if (config.boot.kind === 'Kernel') {
    kernelBoot = { kernelPath: config.boot.kernel, initrdPath: config.boot.initrd, append: config.boot.cmdline };
  }
  let firmware: QemuVmSpec['firmware'];
  if (config.generation === 2) {
    // Secure boot checks what the firmware loads from the VM's devices. A kernel QEMU hands
    // over directly (the test guest, -kernel) is signed by Debian, whose key only shim
    // trusts, so a direct kernel boot runs on the firmware without secure boot.
    const secure = config.secureBoot && boot === 'Firmware';
    const fw = findOvmf(secure);
    const varsPath = secure ? paths.firmwareVarsSecure : paths.firmwareVars;
    await ensureVarsFile(varsPath, fw);
    firmware = { codePath: fw.codePath, varsPath, secureBoot: secure };
  }
  return {
    generation: config.generation,
    name: config.name,
    uuid: config.id,
    processorCount: config.processorCount,
    numa: config.numaNodes > 1 ? { count: config.numaNodes } : undefined,
    memoryStartupBytes: config.memoryStartupBytes,
    accelerator,
    firmware,
    kernelBoot,
    disks,
    // SCSI controller 0 always exists (on generation 1 too) so disks can be hot-plugged.
    scsiControllers: config.scsiControllers,
    floppy: config.floppyPath !== null ? { path: config.floppyPath, bootIndex: floppyBootIndex } : undefined,
    com2SocketPath: config.com2Path ?? undefined,
    nics: [],
    paths: {
      qmpSocket: paths.qmpSocket, serialSocket: paths.serialSocket, serialLog: paths.serialLog,
      vncSocket: paths.vncSocket, agentSocket: paths.agentSocket, pidFile: paths.pidFile, firmwareLog: paths.firmwareLog,
    },
  };
}
