// Test support: a failover cluster of vmhostd nodes on this machine — each node's daemon with its
// own member of an N-member etcd cluster (etcd.ts), all sharing one temp folder as the cluster's
// shared storage — and the PIDs of a node's clustered QEMUs (their runtime.json is node-local).
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDaemon, waitFor } from './daemon.ts';
import { cliTools, type CliTools } from './cli-tools.ts';
import { EtcdCluster } from './etcd.ts';
import { EtcdClient } from '../../src/cluster/etcd-client.ts';
import { PREFIX, aliveKey } from '../../src/cluster/keys.ts';

export interface TestCluster {
  etcd: EtcdCluster;
  shared: string;
  daemons: TestDaemon[];
  t: CliTools[];
  /** Node i dies: its daemon, its clustered QEMUs and its etcd member SIGKILLed. Answers when the kill began (ms). */
  killNode(i: number): Promise<number>;
  /** The nodes' clustered QEMUs SIGKILLed (a killed daemon leaves them), the daemons, etcd and the shared folder gone. */
  stop(): Promise<void>;
  /** For a failure's message: each daemon's last events and output lines, each etcd member's last log lines, and which have exited. */
  diagnosis(lines?: number): Promise<string>;
}

export interface ClusterOptions {
  /** Node i's --cluster-etcd-endpoints (default: its own member first, then the others). */
  endpoints?: (etcd: EtcdCluster, i: number) => Promise<string>;
  /** etcd members (default one per node); those beyond the nodes run on no node (a witness's). */
  members?: number;
  /** More etcd flags for every member (default none: etcd's own timing). */
  etcdArgs?: string[];
  /** More vmhostd arguments for node i (e.g. its --memory-capacity). */
  args?: (i: number) => string[];
  /** Daemons starting at once (default all), and how long each is given (TestDaemon's default 60 s): 16 daemons on a loaded machine need both. */
  startParallel?: number;
  startTimeoutMs?: number;
}

export async function startCluster(names: readonly string[], opts: ClusterOptions = {}): Promise<TestCluster> {
  const etcd = await EtcdCluster.start(opts.members ?? names.length, opts.etcdArgs);
  const endpoints = opts.endpoints;
  const shared = await mkdtemp(join(tmpdir(), 'vmhost-shared-'));
  const daemons: TestDaemon[] = [];
  let next = 0;
  const starter = async (): Promise<void> => {
    for (let i = next++; i < names.length; i = next++) {
      daemons[i] = await TestDaemon.start(undefined, [
        '--cluster-etcd-endpoints', endpoints ? await endpoints(etcd, i) : etcd.endpointsFor(i), '--cluster-storage', shared, '--cluster-node-name', names[i]!,
        ...(opts.args?.(i) ?? []),
      ], { startTimeoutMs: opts.startTimeoutMs });
    }
  };
  const started = await Promise.allSettled(Array.from({ length: Math.min(names.length, opts.startParallel ?? names.length) }, starter));
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    // The caller gets no cluster to stop: what did start goes now.
    for (const d of daemons) await d?.stop();
    await etcd.stop();
    await rm(shared, { recursive: true, force: true });
    throw failed.reason;
  }
  // A daemon answers once it has published itself alive, but on a loaded machine its first lease can lapse
  // (TTL 4 s) before a test's first cmdlet, and New-Cluster needs every node alive: wait until etcd shows them all.
  const client = new EtcdClient(etcd.endpoints);
  await waitFor('every node alive in etcd', opts.startTimeoutMs ?? 60_000, async () => {
    const alive = new Set((await client.range(`${PREFIX}alive/`)).kvs.map((kv) => kv.key));
    return names.every((n) => alive.has(aliveKey(n)));
  });
  return {
    etcd, shared, daemons, t: daemons.map(cliTools),
    killNode: async (i) => {
      const pids = await clusteredQemuPids(daemons[i]!);
      const at = Date.now();
      await daemons[i]!.kill();
      for (const pid of pids) process.kill(pid, 'SIGKILL');
      await etcd.kill(i);
      return at;
    },
    stop: async () => {
      for (const d of daemons) {
        for (const pid of await clusteredQemuPids(d)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
        await d.stop();
      }
      await etcd.stop();
      await rm(shared, { recursive: true, force: true });
    },
    diagnosis: async (lines = 25) => {
      const tail = (text: string): string => text.trimEnd().split('\n').slice(-lines).map((l) => `  ${l}`).join('\n');
      const exit = (p: { exitCode: number | null; signalCode: NodeJS.Signals | null } | undefined): string =>
        p?.exitCode !== null && p?.exitCode !== undefined ? ` (exited ${p.exitCode})` : p?.signalCode ? ` (killed by ${p.signalCode})` : '';
      const events = async (d: TestDaemon): Promise<string> => {
        if (!d.proc || exit(d.proc)) return ''; // no API to ask
        const r = await d.api('GET', `/api/v1/events?limit=${lines}`).catch((e: unknown) => ({ json: `(events unreadable: ${(e as Error).message})` }));
        const list = Array.isArray(r.json) ? (r.json as { Time: string; Code: string; Message: string }[]).map((e) => `${e.Time} ${e.Code} ${e.Message}`).join('\n') : String(r.json);
        return `\n events:\n${tail(list)}`;
      };
      const nodes = await Promise.all(daemons.map(async (d, i) => `node ${names[i]} daemon${exit(d.proc)}:${await events(d)}\n output:\n${tail(d.output)}`));
      return [...nodes, ...etcd.members.map((m) => `etcd member ${m.name}${exit(m.proc)}:\n${tail(m.log)}`)].join('\n');
    },
  };
}

/** PIDs of the QEMUs of a node's clustered VMs (their runtime.json is node-local: DIR/clustered/<id>/). */
export async function clusteredQemuPids(d: TestDaemon): Promise<number[]> {
  const pids: number[] = [];
  for (const id of await readdir(join(d.dataDir, 'clustered')).catch(() => [])) {
    const rec = await readFile(join(d.dataDir, 'clustered', id, 'runtime.json'), 'utf8').catch(() => undefined);
    if (rec) pids.push((JSON.parse(rec) as { pid: number }).pid);
  }
  return pids;
}

/** The cluster `hv` over `names`, with one clustered VM role `app` (192 MB, a 16 MB disk on the shared storage) Online and its guest up. */
export async function withAppRole(c: TestCluster, names: readonly string[]): Promise<void> {
  const t = c.t;
  await Promise.all(t.map((x) => x.ok('Enable-VMMigration')));
  await t[0]!.ok('New-Cluster', '-Name', 'hv', '-Node', names.join(','));
  await t[0]!.ok('New-VM', '-Name', 'app', '-MemoryStartupBytes', '192MB', '-NewVHDPath', join(c.shared, 'app.vhdx'), '-NewVHDSizeBytes', '16MB');
  await t[0]!.ok('Add-ClusterVirtualMachineRole', '-VMName', 'app');
  const started = await t[0]!.json<{ State: string }>('Start-ClusterGroup', 'app');
  if (started.State !== 'Online') throw new Error(`Start-ClusterGroup app: ${started.State}, not Online`);
  await t[0]!.heartbeat('app');
}
