// vmhostd: one host. `bin/vmhostd --data-dir DIR --listen 127.0.0.1:PORT`. Several run side
// by side with different data dirs and ports; `--net-adapter NAME=udp:…` (repeatable) declares
// the host's "physical" adapters, UDP tunnels that External switches bind to (host/net-adapters.ts). Stopping the daemon never stops VMs: QEMU runs
// in its own process group and the next daemon re-attaches — except a cluster node's clustered VMs
// (`--cluster-etcd-endpoints`, src/cluster), which other nodes take over.
import { mkdir, rm } from 'node:fs/promises';
import { resolve, join } from 'node:path';
import { VmhostError } from '../common/index.ts';
import {
  Host, loadNetAdapters, parseNetAdapter, writeFileAtomic, NET_ADAPTER_FLAG,
  PRIVATE_UMASK, privatizeTree, ensurePrivateDir, shortSocketRoot, usesShortSocketRoot, resolveQemuUser, QEMU_SOCKET_DIRS,
} from '../host/index.ts';
import {
  CauAdmin, CauAgent, CauRoleAdmin, ClusterAdmin, ClusterNode, ClusterOps, ClusterOpsAdmin, ClusterSharedVolumes, DEFAULT_HEARTBEAT_TIMING, DEFAULT_LEASE_TIMING, EtcdClient, EtcdTenantPolicy, SHUTDOWN_DRAIN_TIMEOUT_MS,
  checkLeaseTiming, drainOnShutdown, type HeartbeatTiming, type LeaseTiming,
} from '../cluster/index.ts';
import { Replication } from '../replica/index.ts';
import { loadOrCreateToken } from './auth.ts';
import { lockDataDir, type DataDirLock } from './data-dir-lock.ts';
import { buildServer } from './server.ts';
import { DEFAULT_DATA_DIR, DEFAULT_LISTEN, isLoopback, parseListen } from './endpoint.ts';
import { loadOrCreateTlsIdentity, type TlsIdentity } from './tls-certificate.ts';

interface DaemonArgs {
  dataDir: string; listen: string; allowRemote: boolean; netAdapters: string[]; qemuUser?: string; memoryCapacity?: number;
  /** Failover clustering: the etcd cluster's client URLs (this node's own member first), the node's name, the shared folder. */
  etcdEndpoints?: string[]; clusterNodeName?: string; clusterStorage?: string;
  /** How long a stopping node may take to move its running roles away (drain on shutdown). */
  drainTimeoutMs: number;
  /** The node lease's TTL and keepalive: detection and fencing follow them. */
  lease: LeaseTiming;
  /** Heartbeat monitoring of the node's clustered VMs: the grace after a start, the timeout once lost. */
  heartbeat: HeartbeatTiming;
  /** Tests only: replication cycles every ReplicationFrequencySec × this (0 < scale ≤ 1); the cmdlets still take only 30/300/900. */
  replicationTimerScale: number;
  /** Appended to the vmhost version this daemon reports (`0.1.0+TAG`): a build or package revision, as an update installs it. */
  versionTag?: string;
}

function parseArgs(argv: string[]): DaemonArgs {
  const out: DaemonArgs = { dataDir: DEFAULT_DATA_DIR, listen: DEFAULT_LISTEN, allowRemote: false, netAdapters: [], drainTimeoutMs: SHUTDOWN_DRAIN_TIMEOUT_MS, lease: { ...DEFAULT_LEASE_TIMING }, heartbeat: { ...DEFAULT_HEARTBEAT_TIMING }, replicationTimerScale: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new VmhostError('INVALID_ARGUMENT', `${a} needs a value`);
      return v;
    };
    if (a === '--data-dir') out.dataDir = value();
    else if (a === '--listen') out.listen = value();
    else if (a === '--allow-remote') out.allowRemote = true;
    else if (a === '--qemu-user') out.qemuUser = value();
    else if (a === '--memory-capacity') out.memoryCapacity = parseMemoryCapacity(value());
    else if (a === '--cluster-etcd-endpoints') out.etcdEndpoints = parseEndpoints(value());
    else if (a === '--cluster-node-name') out.clusterNodeName = value();
    else if (a === '--cluster-storage') out.clusterStorage = resolve(value());
    else if (a === '--version-tag') {
      out.versionTag = value();
      if (!/^[A-Za-z0-9.-]{1,64}$/.test(out.versionTag)) throw new VmhostError('INVALID_ARGUMENT', '--version-tag: letters, digits, dots and dashes', { param: 'version-tag' });
    }
    else if (a === '--cluster-drain-timeout') out.drainTimeoutMs = parseSeconds(a, value()) * 1000;
    else if (a === '--cluster-lease-ttl') out.lease.ttlSeconds = parseSeconds(a, value());
    else if (a === '--cluster-keepalive') out.lease.keepaliveMs = parseMilliseconds(a, value());
    else if (a === '--cluster-heartbeat-grace') out.heartbeat.graceMs = parsePositiveSeconds(a, value()) * 1000;
    else if (a === '--cluster-heartbeat-timeout') out.heartbeat.lostMs = parsePositiveSeconds(a, value()) * 1000;
    else if (a === '--replication-timer-scale') {
      const v = Number(value());
      if (!(v > 0 && v <= 1)) throw new VmhostError('INVALID_ARGUMENT', '--replication-timer-scale: a number in (0, 1]', { param: 'replication-timer-scale' });
      out.replicationTimerScale = v;
    }
    else if (a === NET_ADAPTER_FLAG) {
      const spec = value();
      parseNetAdapter(spec); // a malformed one stops the daemon before it touches anything
      out.netAdapters.push(spec);
    }
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: vmhostd [--data-dir DIR] [--listen 127.0.0.1:PORT] [--allow-remote] [--qemu-user NAME]   (root only; default vmhost-qemu, root: no -runas)\n'
        + '               [--net-adapter NAME=udp:LOCALADDR:LOCALPORT->REMOTEADDR:REMOTEPORT]...   (also DIR/net-adapters.json: a JSON array of such strings)\n'
        + '               [--memory-capacity BYTES|NMB|NGB]   (memory this host hands out to running VMs; default: the machine\'s)\n'
        + '               [--cluster-etcd-endpoints http://HOST:PORT,...  --cluster-storage SHARED_DIR  [--cluster-node-name NAME]]\n'
        + '                   (a failover cluster node: etcd client URLs, this node\'s own member first; the folder every node reaches; default name: the computer name)\n'
        + '               [--cluster-drain-timeout SECONDS]   (SIGTERM moves the node\'s running roles away live first, for at most this long; default 120)\n'
        + '               [--cluster-lease-ttl SECONDS] [--cluster-keepalive MS]   (the node\'s etcd lease: detection of its death; default 4 s renewed every 1000 ms)\n'
        + '               [--cluster-heartbeat-grace SECONDS] [--cluster-heartbeat-timeout SECONDS]   (a clustered VM with no heartbeat this long after its start, or lost this long, is restarted; default 300 s / 60 s)\n'
        + '               [--version-tag TAG]   (reported as the vmhost version VERSION+TAG: Get-VMHost, Get-ClusterNode, Test-Cluster)\n'
        + '               [--replication-timer-scale F]   (tests: Hyper-V Replica cycles every ReplicationFrequencySec × F, 0 < F ≤ 1)\n');
      process.exit(0);
    } else throw new VmhostError('INVALID_ARGUMENT', `unknown option ${a} (see --help)`);
  }
  out.dataDir = resolve(out.dataDir);
  if ((out.etcdEndpoints === undefined) !== (out.clusterStorage === undefined)) {
    throw new VmhostError('INVALID_ARGUMENT', 'a cluster node needs both --cluster-etcd-endpoints and --cluster-storage', { param: 'cluster-storage' });
  }
  checkLeaseTiming(out.lease);
  return out;
}

/** --cluster-etcd-endpoints: comma-separated http(s) URLs of etcd members. */
function parseEndpoints(v: string): string[] {
  const list = v.split(',').map((x) => x.trim().replace(/\/+$/, '')).filter((x) => x !== '');
  for (const u of list) {
    if (!/^https?:\/\/[^/\s]+$/.test(u)) throw new VmhostError('INVALID_ARGUMENT', `--cluster-etcd-endpoints: '${u}' is not http(s)://HOST:PORT`, { param: 'cluster-etcd-endpoints' });
  }
  if (list.length === 0) throw new VmhostError('INVALID_ARGUMENT', '--cluster-etcd-endpoints: no URL given', { param: 'cluster-etcd-endpoints' });
  return list;
}

function parseSeconds(flag: string, v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 86_400) throw new VmhostError('INVALID_ARGUMENT', `${flag}: '${v}' is not a number of seconds (0–86400)`, { param: flag.slice(2) });
  return n;
}

function parsePositiveSeconds(flag: string, v: string): number {
  const n = parseSeconds(flag, v);
  if (n === 0) throw new VmhostError('INVALID_ARGUMENT', `${flag}: '${v}' must be at least 1 second`, { param: flag.slice(2) });
  return n;
}

function parseMilliseconds(flag: string, v: string): number {
  if (!/^\d{1,7}$/.test(v)) throw new VmhostError('INVALID_ARGUMENT', `${flag}: '${v}' is not a number of milliseconds`, { param: flag.slice(2) });
  return Number(v);
}

/** --memory-capacity: bytes, or a number with MB/GB (Hyper-V's units: 1 MB = 2^20 bytes). */
function parseMemoryCapacity(v: string): number {
  const m = /^(\d+)(MB|GB)?$/i.exec(v);
  const n = m ? Number(m[1]) * (m[2] === undefined ? 1 : 1024 ** (m[2].toUpperCase() === 'GB' ? 3 : 2)) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw new VmhostError('INVALID_ARGUMENT', `--memory-capacity: '${v}' is not a size (bytes, or e.g. 512MB, 4GB)`);
  return n;
}

/**
 * One daemon per data dir: a second one would fight the first over the same QEMUs. The lock
 * (data-dir-lock.ts) decides; the pid file only tells people and tools which process it is.
 */
let dataDirLock: DataDirLock | undefined; // held (and referenced) for the process's lifetime

async function claimDataDir(dataDir: string): Promise<void> {
  dataDirLock = await lockDataDir(dataDir);
  await writeFileAtomic(join(dataDir, 'vmhostd.pid'), `${process.pid}\n`);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const { host: addr, port } = parseListen(args.listen);
  const remote = !isLoopback(addr);
  if (remote && !args.allowRemote) {
    throw new VmhostError('INVALID_ARGUMENT', `refusing to listen on ${addr} without --allow-remote`);
  }
  // As root, QEMU drops to its own user (no user, no start: never silently root).
  const qemuUser = await resolveQemuUser(args.qemuUser);
  // Before anything is created: every file of the daemon and of its QEMUs is 0600, every dir 0700.
  process.umask(PRIVATE_UMASK);
  await mkdir(args.dataDir, { recursive: true });
  await claimDataDir(args.dataDir);
  await privatizeTree(args.dataDir);
  if (usesShortSocketRoot(args.dataDir, qemuUser?.gid)) await ensurePrivateDir(shortSocketRoot(args.dataDir), qemuUser?.gid);
  // QEMU's own user enters the socket dirs it connects into, nothing else (runtime-dir.ts).
  if (qemuUser) for (const name of QEMU_SOCKET_DIRS) await ensurePrivateDir(join(shortSocketRoot(args.dataDir), name), qemuUser.gid);
  const netAdapters = await loadNetAdapters(args.dataDir, args.netAdapters);
  const token = await loadOrCreateToken(args.dataDir);
  // Off loopback the token and session cookies would cross the network: HTTPS only, never both.
  // Before Host.open, so a bad certificate stops the daemon before it re-attaches anything.
  const tls = remote ? await loadOrCreateTlsIdentity(args.dataDir) : undefined;
  // A move's stream listeners present the same certificate, on loopback too (made on the first move there), and so
  // does the loopback API port to other daemons' calls (a move's prepare and commit: http-or-tls.ts).
  let streamIdentity: Promise<TlsIdentity> | undefined = tls && Promise.resolve(tls);
  const tlsIdentity = (): Promise<TlsIdentity> => (streamIdentity ??= loadOrCreateTlsIdentity(args.dataDir).catch((e: unknown) => { streamIdentity = undefined; throw e; }));
  const host = await Host.open(args.dataDir, netAdapters, qemuUser, { memoryCapacity: args.memoryCapacity, listenHost: addr === '0.0.0.0' ? '127.0.0.1' : addr, tlsIdentity });
  if (args.versionTag !== undefined) host.facts.vmhostVersion = `${host.facts.vmhostVersion}+${args.versionTag}`;
  const url = `${tls ? 'https' : 'http'}://${addr.includes(':') ? `[${addr}]` : addr}:${port}`;
  // Joined before the API listens: a node that cannot reach etcd does not start (it could not own anything).
  const cluster = args.etcdEndpoints && args.clusterStorage ? await ClusterNode.start({
    etcd: new EtcdClient(args.etcdEndpoints), host, name: args.clusterNodeName ?? host.facts.computerName, url, storage: args.clusterStorage, lease: args.lease,
  }) : undefined;
  const admin = cluster ? new ClusterAdmin(cluster) : undefined;
  // A cluster's nodes route tenants with one set of lookup records and customer routes: the cluster's.
  if (cluster) {
    await host.hnv.share(new EtcdTenantPolicy(cluster.etcd), (e) => host.events.emit({ Level: 'Error', Code: 'HNV_BAD_POLICY', Message: `Network virtualization policy from the cluster not applied: ${e.message}` }));
  }
  // Beside the node's loop: its events copied for Get-ClusterLog, Test-Cluster's answers, VM monitoring.
  const ops = cluster ? ClusterOps.start(cluster, host, args.heartbeat) : undefined;
  // The host's disk-file operations on a Cluster Shared Volume go to its coordinator from here on.
  const csv = cluster ? ClusterSharedVolumes.start(cluster, host) : undefined;
  const cau = cluster && admin ? CauAgent.start(cluster, admin, args.dataDir) : undefined;
  const replication = await Replication.open(host, args.replicationTimerScale);
  const app = await buildServer({ host, token, tls, loopbackTls: tls ? undefined : tlsIdentity, cluster: admin, clusterOps: cluster ? new ClusterOpsAdmin(cluster) : undefined, csv, cau: cluster ? { admin: new CauAdmin(cluster), role: new CauRoleAdmin(cluster) } : undefined, replication });
  await app.listen({ host: addr, port });
  await writeFileAtomic(join(args.dataDir, 'daemon.json'), JSON.stringify({ pid: process.pid, url, tlsFingerprint: tls?.fingerprint }, null, 2));
  if (tls) process.stdout.write(`vmhostd TLS certificate SHA-256 fingerprint ${tls.fingerprint} (${join(args.dataDir, 'tls.crt')})\n`);
  process.stdout.write(`vmhostd ${host.facts.vmhostVersion} listening on ${url} (data dir ${args.dataDir}, accelerator ${host.acceleratorInUse}${qemuUser ? `, QEMU as ${qemuUser.name}` : ''})\n`);

  let stopping = false;
  const stop = async (sig: string): Promise<void> => {
    if (stopping) return; // systemd may repeat the signal: one stop, one drain
    stopping = true;
    cau?.stop();
    process.stdout.write(`vmhostd: ${sig}, stopping (VMs keep running${cluster ? '; clustered roles move to other nodes first' : ''})\n`);
    // Drain on shutdown: the running roles move live while the API still answers (the others ask it nothing for a move,
    // but an administrator may watch the drain here).
    const drained = cluster && admin
      ? await drainOnShutdown(cluster, admin, args.drainTimeoutMs, (line) => process.stdout.write(`vmhostd: ${line}\n`))
        .catch((e: unknown) => { process.stderr.write(`vmhostd: drain on shutdown: ${(e as Error).message}\n`); return undefined; })
      : undefined;
    await app.close();
    await ops?.close();
    await csv?.close();
    // A stop while a CAU run updates this node is the update restarting the daemon: the node comes back, and keeps its vote.
    const restartingForUpdate = await cau?.updatingThisNode() ?? false;
    await cau?.close();
    // Leaving cleanly: what is still here (roles that did not move, Offline ones) is turned off and the lease revoked,
    // so the others take those roles at once instead of after the TTL.
    await cluster?.close(true);
    host.hnv.unshare();
    await replication.close();
    await ops?.closeLog();
    await drained?.restore().catch(() => undefined);
    // Last, since its own etcd member stops once removed (dynamic quorum).
    if (!restartingForUpdate) await cluster?.leaveVote();
    await host.close();
    await rm(join(args.dataDir, 'daemon.json'), { force: true });
    await rm(join(args.dataDir, 'vmhostd.pid'), { force: true });
    await dataDirLock?.release();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((e: unknown) => {
  process.stderr.write(`vmhostd: ${(e as Error).message}\n`);
  process.exit(1);
});
