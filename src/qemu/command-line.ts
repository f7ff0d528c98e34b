// Builds the QEMU argv from a QemuVmSpec. A pure function (node:path only): no I/O, no defaults read from the
// host (the caller resolves firmware paths and the accelerator first), so it is unit-tested
// exhaustively. Depends on: src/common (errors), ./vm-spec, ./error-codes, ./handed-files.
//
// Choices worth knowing:
// - No `-no-shutdown`: a guest power-off (or QMP `quit`) ends the QEMU process. "Off" then
//   means "no process", which holds no memory, needs no extra QMP step, and cannot leave a
//   stopped-but-alive QEMU behind after a daemon crash. The SHUTDOWN event (reason
//   guest-shutdown / host-qmp-quit …) arrives before the exit, so the cause is still known.
//   Guest reboots stay reboots (no `-no-reboot`).
// - `-nodefaults -no-user-config`: every device is listed here; nothing comes from QEMU's
//   defaults or a host config file.
// - Serial: a server socket (a console attaches whenever it likes, `wait=off`) with
//   `logfile=`, so serial output is written to the log whether or not anyone is attached.
// - Generation 2 has no legacy devices we add: no IDE, no e1000, bochs-display instead of VGA.

import { HANDED_FD_BASE, handOver, type HandedFile, type Handover } from './handed-files.ts';
import { VmhostError } from '../common/index.ts';
import { QemuErrorCode } from './error-codes.ts';
import { BALLOON_ID } from './memory.ts';
import { join } from 'node:path';
import type { DiskSpec, NicSpec, QemuLaunchOptions, QemuRuntimePaths, QemuVmSpec, VirtioMemSpec } from './vm-spec.ts';

const MiB = 1024 * 1024;
/** virtio-mem's block size here: Hyper-V's 2 MB unit, and x86's transparent huge page. */
export const VIRTIO_MEM_BLOCK = 2 * MiB;
/** sun_path is 108 bytes including the NUL. */
const MAX_UNIX_PATH = 107;
const ID_RE = /^[A-Za-z][A-Za-z0-9_-]{0,30}$/;
const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** The conventional file names inside one VM's runtime directory (keep it short: sockets ≤ 107 bytes). */
export function runtimePathsIn(runDir: string): QemuRuntimePaths {
  return {
    qmpSocket: join(runDir, 'qmp.sock'), serialSocket: join(runDir, 'serial.sock'), serialLog: join(runDir, 'serial.log'),
    vncSocket: join(runDir, 'vnc.sock'), agentSocket: join(runDir, 'agent.sock'), pidFile: join(runDir, 'qemu.pid'),
  };
}

/** The node-name of a disk's block node (for blockdev-del, block_resize …). */
export function diskNodeName(diskId: string): string { return `${diskId}-blk`; }

/** Node name of the NBD connection under a disk; `generation` counts connection swaps (resize). */
export function nbdNodeName(diskId: string, generation: number): string { return `${diskId}-nbd${generation}`; }

export const NBD_RECONNECT_DELAY_S = 20;
/** The QEMU netdev id of a NIC (for netdev_del/netdev_add when re-plugging to a switch). */
export function nicNetdevId(nicId: string): string { return `${nicId}-net`; }
/** Device id of the virtio-scsi controller with this number. */
export function scsiControllerId(n: number): string { return `scsi${n}`; }
/** Name of the guest agent's virtio-serial port, as the guest sees it. */
export const AGENT_PORT_NAME = 'org.vmhost.agent.0';

/** QEMU option values double a comma to keep it literal. */
export function optValue(v: string): string { return v.replaceAll(',', ',,'); }

function invalid(spec: QemuVmSpec, message: string, extra: Record<string, string | number> = {}): VmhostError {
  return new VmhostError(QemuErrorCode.QEMU_SPEC_INVALID, message, { op: 'build-qemu-argv', vm: spec.name, ...extra });
}

function opts(first: string, props: Record<string, string | number | boolean | undefined>): string {
  const parts = [first];
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined) continue;
    const s = typeof v === 'boolean' ? (v ? 'on' : 'off') : String(v);
    parts.push(`${k}=${optValue(s)}`);
  }
  return parts.join(',');
}

function checkSocketPath(spec: QemuVmSpec, what: string, p: string): void {
  if (Buffer.byteLength(p) > MAX_UNIX_PATH) {
    throw invalid(spec, `${what} socket path is longer than ${MAX_UNIX_PATH} bytes (unix socket limit): ${p}`, { path: p });
  }
}

/** CPU index ranges and memory (MiB) for each virtual NUMA node. */
export function numaLayout(processorCount: number, memoryMiB: number, count: number, memoryMiBPerNode?: number[]):
  { firstCpu: number; lastCpu: number; memoryMiB: number }[] {
  const nodes = [];
  const evenMem = Math.floor(memoryMiB / count);
  for (let i = 0; i < count; i++) {
    const firstCpu = Math.floor((i * processorCount) / count);
    const lastCpu = Math.floor(((i + 1) * processorCount) / count) - 1;
    const mem = memoryMiBPerNode?.[i] ?? (i === count - 1 ? memoryMiB - evenMem * (count - 1) : evenMem);
    nodes.push({ firstCpu, lastCpu, memoryMiB: mem });
  }
  return nodes;
}

function validate(spec: QemuVmSpec): void {
  if (spec.generation !== 1 && spec.generation !== 2) throw invalid(spec, `generation must be 1 or 2, got ${String(spec.generation)}`);
  if (!spec.name || spec.name.includes('\n')) throw invalid(spec, 'VM name must be a non-empty single line');
  if (!UUID_RE.test(spec.uuid)) throw invalid(spec, `not a UUID: ${spec.uuid}`);
  if (!Number.isInteger(spec.processorCount) || spec.processorCount < 1 || spec.processorCount > 240) {
    throw invalid(spec, `processorCount must be an integer 1..240, got ${spec.processorCount}`);
  }
  if (spec.topology) {
    const { sockets, cores, threads } = spec.topology;
    if (![sockets, cores, threads].every((n) => Number.isInteger(n) && n >= 1) || sockets * cores * threads !== spec.processorCount) {
      throw invalid(spec, `topology ${sockets}x${cores}x${threads} does not multiply to processorCount ${spec.processorCount}`);
    }
  }
  if (!Number.isInteger(spec.memoryStartupBytes) || spec.memoryStartupBytes < 16 * MiB || spec.memoryStartupBytes % MiB !== 0) {
    throw invalid(spec, `memoryStartupBytes must be a whole number of MiB, at least 16 MiB (got ${spec.memoryStartupBytes})`);
  }
  if (spec.numa) {
    const { count, memoryMiBPerNode } = spec.numa;
    if (!Number.isInteger(count) || count < 1 || count > spec.processorCount) {
      throw invalid(spec, `NUMA node count must be 1..processorCount (${spec.processorCount}), got ${count}`);
    }
    if (memoryMiBPerNode) {
      const total = spec.memoryStartupBytes / MiB;
      if (memoryMiBPerNode.length !== count || memoryMiBPerNode.some((m) => !Number.isInteger(m) || m < 1)
        || memoryMiBPerNode.reduce((a, b) => a + b, 0) !== total) {
        throw invalid(spec, `NUMA memory per node must be ${count} positive MiB values summing to ${total}`);
      }
    } else if (spec.memoryStartupBytes / MiB < count) {
      throw invalid(spec, 'less than 1 MiB of memory per NUMA node');
    }
  }
  if (spec.generation === 2 && !spec.firmware) throw invalid(spec, 'generation 2 needs UEFI firmware (firmware.codePath/varsPath)');
  if (spec.generation === 1 && spec.firmware) throw invalid(spec, 'generation 1 boots SeaBIOS; firmware is for generation 2 only');
  const p = spec.paths;
  if (spec.floppy && spec.generation !== 1) throw invalid(spec, 'generation 2 VMs have no floppy drive');
  if (spec.com2SocketPath !== undefined) checkSocketPath(spec, 'COM 2', spec.com2SocketPath);
  checkSocketPath(spec, 'QMP', p.qmpSocket);
  checkSocketPath(spec, 'serial', p.serialSocket);
  checkSocketPath(spec, 'VNC', p.vncSocket);
  checkSocketPath(spec, 'agent', p.agentSocket);

  const ids = new Set<string>();
  const seenId = (id: string) => {
    if (!ID_RE.test(id)) throw invalid(spec, `device id '${id}' must match ${ID_RE.source}`, { device: id });
    if (ids.has(id)) throw invalid(spec, `duplicate device id '${id}'`, { device: id });
    ids.add(id);
  };
  const ideSlots = new Set<string>();
  const scsiSlots = new Set<string>();
  for (const d of spec.disks) {
    seenId(d.id);
    if (d.source.kind === 'nbd') checkSocketPath(spec, `disk ${d.id} NBD`, d.source.socketPath);
    if (d.source.kind === 'empty' && d.media !== 'cdrom') throw invalid(spec, `disk ${d.id}: only a DVD drive can be empty`, { device: d.id });
    if (d.bus === 'ide') {
      if (spec.generation === 2) {
        throw invalid(spec, `disk ${d.id}: generation 2 VMs have no IDE controller; attach it to SCSI`, { device: d.id });
      }
      const c = d.controllerNumber ?? 0, l = d.controllerLocation ?? 0;
      if (![0, 1].includes(c) || ![0, 1].includes(l)) throw invalid(spec, `disk ${d.id}: IDE controller and location must be 0 or 1`, { device: d.id });
      if (ideSlots.has(`${c}:${l}`)) throw invalid(spec, `disk ${d.id}: IDE ${c}:${l} is already used`, { device: d.id });
      ideSlots.add(`${c}:${l}`);
      if (d.readOnly && (d.media ?? 'disk') === 'disk') throw invalid(spec, `disk ${d.id}: an IDE hard disk cannot be read-only (use a DVD drive or SCSI)`, { device: d.id });
      if (d.logicalBlockSize === 4096) throw invalid(spec, `disk ${d.id}: a disk with 4096-byte logical sectors needs a SCSI controller (IDE is 512 only)`, { device: d.id });
    } else if (d.bus === 'scsi') {
      const c = d.controllerNumber ?? 0, l = d.controllerLocation ?? 0;
      if (!Number.isInteger(c) || c < 0 || c > 3) throw invalid(spec, `disk ${d.id}: SCSI controller must be 0..3`, { device: d.id });
      if (!Number.isInteger(l) || l < 0 || l > 63) throw invalid(spec, `disk ${d.id}: SCSI location must be 0..63`, { device: d.id });
      if (scsiSlots.has(`${c}:${l}`)) throw invalid(spec, `disk ${d.id}: SCSI ${c}:${l} is already used`, { device: d.id });
      scsiSlots.add(`${c}:${l}`);
    } else if (d.bus === 'virtio') {
      if (d.media === 'cdrom') throw invalid(spec, `disk ${d.id}: a DVD drive must be on IDE or SCSI`, { device: d.id });
    } else {
      throw invalid(spec, `disk ${(d as DiskSpec).id}: unknown bus ${String((d as DiskSpec).bus)}`);
    }
  }
  for (const n of spec.nics) {
    seenId(n.id);
    if (!MAC_RE.test(n.mac)) throw invalid(spec, `NIC ${n.id}: bad MAC address ${n.mac}`, { device: n.id });
    if ((parseInt(n.mac.slice(0, 2), 16) & 1) !== 0) throw invalid(spec, `NIC ${n.id}: ${n.mac} is a multicast address`, { device: n.id });
    if (n.model === 'legacy' && spec.generation === 2) {
      throw invalid(spec, `NIC ${n.id}: generation 2 VMs have no legacy network adapter; use a synthetic (virtio) one`, { device: n.id });
    }
    if (n.model !== 'legacy' && n.model !== 'virtio') throw invalid(spec, `NIC ${n.id}: unknown model ${String(n.model)}`, { device: n.id });
    checkSocketPath(spec, `NIC ${n.id} switch`, n.streamSocketPath);
  }
  for (const m of spec.virtioMem ?? []) {
    seenId(m.id);
    if (spec.numa) throw invalid(spec, `virtio-mem ${m.id}: dynamic memory and virtual NUMA exclude each other`, { device: m.id });
    if (!Number.isSafeInteger(m.sizeBytes) || m.sizeBytes <= 0 || m.sizeBytes % VIRTIO_MEM_BLOCK !== 0
      || !Number.isSafeInteger(m.requestedBytes) || m.requestedBytes < 0 || m.requestedBytes > m.sizeBytes || m.requestedBytes % VIRTIO_MEM_BLOCK !== 0) {
      throw invalid(spec, `virtio-mem ${m.id}: size and requested size must be whole 2 MiB blocks, requested ≤ size`, { device: m.id });
    }
  }
}

/**
 * Device properties for the sector sizes a disk shows the guest (absent: QEMU's 512), and for
 * what an I/O error does: an NBD disk stops the VM instead of failing the guest's request, so
 * a block server that is away longer than reconnect-delay pauses the guest (Hyper-V's
 * critical pause) and the host resumes it once the disk is served again.
 */
export function blockSizes(d: DiskSpec): Record<string, number | string | undefined> {
  const stop = d.source.kind === 'nbd' && d.media !== 'cdrom' ? 'stop' : undefined;
  return { logical_block_size: d.logicalBlockSize, physical_block_size: d.physicalBlockSize, werror: stop, rerror: stop };
}

function diskArgs(d: DiskSpec): string[] {
  const node = diskNodeName(d.id);
  const ro = d.readOnly ?? false;
  const args: string[] = [];
  if (d.source.kind === 'empty') {
    // An empty tray: the device exists (so media can be inserted while the VM runs), no drive.
    const bus = d.bus === 'ide' ? { bus: `ide.${d.controllerNumber ?? 0}`, unit: d.controllerLocation ?? 0 }
      : { bus: `${scsiControllerId(d.controllerNumber ?? 0)}.0`, channel: 0, 'scsi-id': d.controllerLocation ?? 0, lun: 0 };
    return ['-device', opts(d.bus === 'ide' ? 'ide-cd' : 'scsi-cd', { id: d.id, ...bus, bootindex: d.bootIndex })];
  }
  if (d.source.kind === 'nbd') {
    args.push('-blockdev', opts('driver=nbd', {
      'node-name': nbdNodeName(d.id, 0), 'server.type': 'unix', 'server.path': d.source.socketPath, export: d.source.exportName,
      // Guests ride out a block-server restart (DESIGN §9): requests wait up to 20 s for a reconnect.
      'reconnect-delay': NBD_RECONNECT_DELAY_S, 'read-only': ro,
    }));
    // A raw node above the NBD connection: an online resize swaps the connection underneath
    // it (hotplug.ts), since an NBD node cannot change its size.
    args.push('-blockdev', opts('driver=raw', { 'node-name': node, file: nbdNodeName(d.id, 0), 'read-only': ro }));
  } else {
    args.push('-blockdev', opts('driver=file', { 'node-name': `${node}-file`, filename: d.source.path, 'read-only': ro }));
    args.push('-blockdev', opts(`driver=${d.source.format ?? 'raw'}`, { 'node-name': node, file: `${node}-file`, 'read-only': ro }));
  }
  const cd = d.media === 'cdrom';
  if (d.bus === 'ide') {
    args.push('-device', opts(cd ? 'ide-cd' : 'ide-hd', {
      drive: node, id: d.id, bus: `ide.${d.controllerNumber ?? 0}`, unit: d.controllerLocation ?? 0, bootindex: d.bootIndex,
      werror: blockSizes(d).werror, rerror: blockSizes(d).rerror, ...(cd ? {} : d.geometry),
    }));
  } else if (d.bus === 'scsi') {
    args.push('-device', opts(cd ? 'scsi-cd' : 'scsi-hd', {
      drive: node, id: d.id, bus: `${scsiControllerId(d.controllerNumber ?? 0)}.0`, channel: 0,
      'scsi-id': d.controllerLocation ?? 0, lun: 0, bootindex: d.bootIndex, ...blockSizes(d), ...(cd ? {} : d.geometry),
    }));
  } else {
    args.push('-device', opts('virtio-blk-pci', { drive: node, id: d.id, bootindex: d.bootIndex, ...blockSizes(d) }));
  }
  return args;
}

function nicArgs(spec: QemuVmSpec, n: NicSpec): string[] {
  const netdev = nicNetdevId(n.id);
  const model = n.model === 'legacy' && spec.generation === 1 ? 'e1000' : 'virtio-net-pci';
  return [
    '-netdev', opts('stream', { id: netdev, server: false, 'addr.type': 'unix', 'addr.path': n.streamSocketPath }),
    '-device', opts(model, { netdev, mac: n.mac.toLowerCase(), id: n.id, bootindex: n.bootIndex }),
  ];
}

/**
 * Under TCG every boot RAM block is this much longer than asked (issue 11's move-back defect):
 * QEMU 7.2 lost dirty pages of a guest that kept writing them, and the destination ran with
 * stale kernel pages. Our reading, which the measurement below bears out: the dirty bitmap of a
 * block whose length is a multiple of 256 KiB is synced by swapping whole bitmap words, without
 * re-arming TCG's write tracking in the vCPUs' TLBs (the page-by-page path does), so a page
 * written through a cached TLB entry is never sent again.
 * Measured: q1 → q2 → q3 between hand-started QEMUs, the guest dirtying 64 MiB at 50 MB/s on q2,
 * q2 (postmigrate) and q3 (loaded, not yet running) compared page by page with pmemsave — with
 * 256 MiB, 11 and 23 pages differed (hot kernel pages such as the timer bases: q3's guest
 * panicked in rb_erase/rb_next, "Fatal exception in interrupt") and 4 of 5 such moves panicked;
 * with 256 MiB + 4 KiB, 0 pages differed in 6 moves. KVM tracks writes in its own log: no pad.
 * virtio-mem regions (dynamic memory) are whole blocks and cannot be padded: still exposed.
 * The price: the page-by-page path scans every vCPU's TLB for each dirty page under QEMU's lock,
 * and a migration's first sync finds every page dirty — the guest stops for 0.2–0.8 s (seconds
 * under load) as the pre-copy starts (BENCHMARKS.md, "what stops the guest in the pre-copy").
 */
const TCG_RAM_PAD = 4096;

const ramPad = (spec: QemuVmSpec): number => spec.ramPadBytes ?? (spec.accelerator === 'tcg' ? TCG_RAM_PAD : 0);

/** A size in KiB for -m and memory backends: `mib` MiB plus the pad. */
const kib = (mib: number, pad: number): string => `${mib * 1024 + pad / 1024}K`;

/**
 * `-m`: the startup memory, and with virtio-mem devices the most the machine may ever hold
 * (maxmem: their regions follow the startup memory, each a whole number of blocks). Each RAM
 * block gets the TCG pad: the one boot block, or each NUMA node's.
 */
function memoryOption(spec: QemuVmSpec): string {
  const memMiB = spec.memoryStartupBytes / MiB;
  const pad = ramPad(spec) * (spec.numa?.count ?? 1);
  const extra = (spec.virtioMem ?? []).reduce((s, m) => s + m.sizeBytes, 0);
  if (pad === 0) return extra === 0 ? `${memMiB}M` : `${memMiB}M,maxmem=${memMiB + extra / MiB}M`;
  // maxmem a whole MiB over: with the padded RAM, QEMU 7.2 left 4 KiB less than maxmem − RAM for
  // memory devices (measured: "not enough space … 0x3ffff000" for a 1 GiB virtio-mem region).
  return extra === 0 ? kib(memMiB, pad) : `${kib(memMiB, pad)},maxmem=${memMiB + extra / MiB + 1}M`;
}

/**
 * A virtio-mem device and its backend. `reserve=off`: a RAM region takes no memory (nor
 * overcommit) until the guest plugs blocks; a file backend is a shared mapping, so the pages
 * the guest touches live in the file (smart paging), and unplugged blocks are punched out.
 */
function virtioMemArgs(m: VirtioMemSpec): string[] {
  const memdev = `${m.id}-mem`;
  const backend = m.file === undefined
    ? opts('memory-backend-ram', { id: memdev, size: m.sizeBytes, reserve: false })
    : opts('memory-backend-file', { id: memdev, size: m.sizeBytes, 'mem-path': m.file, share: true });
  return ['-object', backend, '-device', opts('virtio-mem-pci', { id: m.id, memdev, 'requested-size': m.requestedBytes, 'block-size': VIRTIO_MEM_BLOCK })];
}

/**
 * The full argv (without the binary) for this VM. Throws QEMU_SPEC_INVALID with a message
 * naming the offending setting.
 */
/** A generation 2 VM's NVRAM, handed over by descriptor when QEMU drops to its own user (handed-files.ts). */
function varsHandover(spec: QemuVmSpec, launch: QemuLaunchOptions): Handover | undefined {
  return spec.firmware && launch.runAs ? handOver(spec.firmware.varsPath, 1, HANDED_FD_BASE) : undefined;
}

/** The files buildQemuArgv's argv expects as open descriptors (QemuProcess.start opens them). */
export function handedFiles(spec: QemuVmSpec, launch: QemuLaunchOptions = {}): HandedFile[] {
  return varsHandover(spec, launch)?.files ?? [];
}

export function buildQemuArgv(spec: QemuVmSpec, launch: QemuLaunchOptions = {}): string[] {
  validate(spec);
  const memMiB = spec.memoryStartupBytes / MiB;
  const topo = spec.topology ?? { sockets: spec.processorCount, cores: 1, threads: 1 };
  const gen2 = spec.generation === 2;
  const secure = gen2 && spec.firmware!.secureBoot;
  const p = spec.paths;

  const a: string[] = [
    '-name', opts(`guest=${optValue(spec.name)}`, { 'debug-threads': true }),
    '-uuid', spec.uuid,
    '-nodefaults', '-no-user-config',
    '-machine', opts(gen2 ? 'q35' : 'pc', { smm: secure ? true : undefined }),
    '-accel', spec.accelerator,
    '-cpu', spec.cpuModel ?? (spec.accelerator === 'kvm' ? 'host' : 'qemu64'),
    '-smp', opts(`cpus=${spec.processorCount}`, { sockets: topo.sockets, cores: topo.cores, threads: topo.threads }),
    '-m', memoryOption(spec),
  ];
  if (spec.numa) {
    const nodes = numaLayout(spec.processorCount, memMiB, spec.numa.count, spec.numa.memoryMiBPerNode);
    nodes.forEach((n, i) => {
      a.push('-object', `memory-backend-ram,id=ram-node${i},size=${ramPad(spec) === 0 ? `${n.memoryMiB}M` : kib(n.memoryMiB, ramPad(spec))}`);
      const cpus = n.firstCpu === n.lastCpu ? `${n.firstCpu}` : `${n.firstCpu}-${n.lastCpu}`;
      a.push('-numa', `node,nodeid=${i},cpus=${cpus},memdev=ram-node${i}`);
    });
  }
  for (const m of spec.virtioMem ?? []) a.push(...virtioMemArgs(m));
  if (gen2) {
    const fw = spec.firmware!;
    if (secure) a.push('-global', 'driver=cfi.pflash01,property=secure,value=on');
    a.push('-drive', opts('if=pflash', { format: 'raw', unit: 0, readonly: true, file: fw.codePath }));
    const vars = varsHandover(spec, launch);
    if (vars) a.push(...vars.args);
    a.push('-drive', opts('if=pflash', { format: 'raw', unit: 1, file: vars?.file ?? fw.varsPath }));
  }
  a.push(
    '-pidfile', p.pidFile,
    '-display', 'none',
    '-rtc', 'base=utc',
    '-chardev', opts('socket', { id: 'qmp', path: p.qmpSocket, server: true, wait: false }),
    '-mon', 'chardev=qmp,mode=control',
    '-chardev', opts('socket', { id: 'serial0', path: p.serialSocket, server: true, wait: false, logfile: p.serialLog, logappend: true }),
    '-device', 'isa-serial,chardev=serial0,id=com1',
    '-vnc', `unix:${optValue(p.vncSocket)}`,
    '-device', gen2 ? 'bochs-display,id=video0' : 'VGA,id=video0',
    '-device', 'virtio-serial-pci,id=vserial0',
    '-chardev', opts('socket', { id: 'agent0', path: p.agentSocket, server: true, wait: false }),
    '-device', `virtserialport,bus=vserial0.0,chardev=agent0,name=${AGENT_PORT_NAME}`,
    '-device', opts('virtio-balloon-pci', { id: BALLOON_ID, 'deflate-on-oom': spec.balloonDeflateOnOom }),
  );
  if (p.firmwareLog) a.push('-chardev', opts('file', { id: 'fwlog', path: p.firmwareLog }), '-device', 'isa-debugcon,iobase=0x402,chardev=fwlog');
  // A firmware boot tries exactly the devices given a bootindex, in that order (Hyper-V's
  // boot order); without strict, SeaBIOS would go on to the floppy controller and beyond.
  if (spec.disks.some((d) => d.bootIndex !== undefined) || spec.nics.some((n) => n.bootIndex !== undefined) || spec.floppy?.bootIndex !== undefined
    || launch.bootIndexedExtras) {
    a.push('-boot', 'strict=on');
  }
  if (spec.kernelBoot) {
    a.push('-kernel', spec.kernelBoot.kernelPath);
    if (spec.kernelBoot.initrdPath) a.push('-initrd', spec.kernelBoot.initrdPath);
    if (spec.kernelBoot.append) a.push('-append', spec.kernelBoot.append);
  }
  // Controllers the spec asks for (so SCSI disks can be hot-plugged later) and any a disk uses.
  const scsiControllers = [...new Set([
    ...Array.from({ length: spec.scsiControllers ?? 0 }, (_, i) => i),
    ...spec.disks.filter((d) => d.bus === 'scsi').map((d) => d.controllerNumber ?? 0),
  ])].sort();
  for (const c of scsiControllers) a.push('-device', `virtio-scsi-pci,id=${scsiControllerId(c)}`);
  for (const d of spec.disks) a.push(...diskArgs(d));
  for (const n of spec.nics) a.push(...nicArgs(spec, n));
  if (spec.floppy) {
    a.push('-blockdev', opts('driver=file', { 'node-name': 'fd0-file', filename: spec.floppy.path }));
    a.push('-blockdev', 'driver=raw,node-name=fd0,file=fd0-file', '-device', 'floppy,drive=fd0,unit=0,id=floppy0');
    // The floppy device has no bootindex of its own: the controller carries drive A's.
    if (spec.floppy.bootIndex !== undefined) a.push('-global', `isa-fdc.bootindexA=${spec.floppy.bootIndex}`);
  }
  if (spec.com2SocketPath !== undefined) {
    a.push('-chardev', opts('socket', { id: 'serial1', path: spec.com2SocketPath, server: true, wait: false }), '-device', 'isa-serial,chardev=serial1,id=com2,index=1');
  }
  if (launch.startPaused) a.push('-S');
  if (launch.incoming) a.push('-incoming', launch.incoming);
  if (launch.extraArgs) a.push(...launch.extraArgs);
  if (launch.runAs !== undefined) {
    if (!USER_RE.test(launch.runAs) || launch.runAs === 'root') throw invalid(spec, `cannot run QEMU as user '${launch.runAs}'`);
    a.push('-runas', launch.runAs);
  }
  a.push('-sandbox', launch.runAs === undefined ? QEMU_SANDBOX : QEMU_SANDBOX_RUNAS);
  return a;
}

/**
 * Seccomp for every guest (issue 16 item 6): a guest escape into QEMU finds no obsolete
 * syscalls, no set*uid/gid, no fork/exec (so no `exec:` migration URIs: save-state.ts), no
 * scheduler/affinity changes.
 */
export const QEMU_SANDBOX = 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny';

/**
 * The same under `-runas`. QEMU 7.2 installs its seccomp filter before it drops root, so
 * `elevateprivileges=deny` (and `children`) kill it with SIGSYS on its own setgid/setuid.
 * Once dropped, the process has no capabilities, every uid/gid is the QEMU user's and
 * NoNewPrivs is set (spawn=deny forbids exec anyway), so no set*id call can raise it again.
 */
export const QEMU_SANDBOX_RUNAS = 'on,obsolete=deny,elevateprivileges=allow,spawn=deny,resourcecontrol=deny';
const USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/;
