// Test support: a failover cluster of vmhostd nodes on this machine — each node's daemon with its
// own member of an N-member etcd cluster (etcd.ts), all sharing one temp folder as the cluster's
// shared storage — and the PIDs of a node's clustered QEMUs (their runtime.json is node-local).
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDaemon } from './daemon.ts';
import { cliTools, type CliTools } from './cli-tools.ts';
import { EtcdCluster } from './etcd.ts';

export interface TestCluster {
  etcd: EtcdCluster;
  shared: string;
  daemons: TestDaemon[];
  t: CliTools[];
  /** The nodes' clustered QEMUs SIGKILLed (a killed daemon leaves them), the daemons, etcd and the shared folder gone. */
  stop(): Promise<void>;
}

export interface ClusterOptions {
  /** Node i's --cluster-etcd-endpoints (default: its own member first, then the others). */
  endpoints?: (etcd: EtcdCluster, i: number) => Promise<string>;
  /** etcd members (default one per node); those beyond the nodes run on no node (a witness's). */
  members?: number;
  /** More vmhostd arguments for node i (e.g. its --memory-capacity). */
  args?: (i: number) => string[];
  /** Daemons starting at once (default all), and how long each is given (TestDaemon's default 60 s): 16 daemons on a loaded machine need both. */
  startParallel?: number;
  startTimeoutMs?: number;
}

export async function startCluster(names: readonly string[], opts: ClusterOptions = {}): Promise<TestCluster> {
  const etcd = await EtcdCluster.start(opts.members ?? names.length);
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
  return {
    etcd, shared, daemons, t: daemons.map(cliTools),
    stop: async () => {
      for (const d of daemons) {
        for (const pid of await clusteredQemuPids(d)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
        await d.stop();
      }
      await etcd.stop();
      await rm(shared, { recursive: true, force: true });
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
