// Failover time of a clustered VM, broken down, with etcd's own latency as the floor (issue 14).
//   node --import tsx bench/cluster-failover.ts          (REPEAT=3 partitions, then REPEAT node deaths; CALLS=200 etcd calls per kind)
// Three vmhostd nodes on this machine, each with its own etcd member (test/support/partition.ts),
// one clustered test guest (TCG). Per partition of the VM's owner (its member frozen, its links to
// the other members cut):
//   detection   cut → the majority sees the owner Down (its lease expired in etcd);
//   fencing     cut → the cut owner has turned its VM off by itself (before anyone may claim it);
//   restart     Down → the role Online on the new owner (claimed, registered, QEMU started);
//   guest       Down → the guest's agent answers again (the boot under TCG).
// Per node death (daemon, QEMUs and member SIGKILLed): detection and restart the same way; its
// fencing wait is the lease TTL inside detection (no keepalive can come from a dead node).
// Floor: etcd's put, txn and lease keepalive through the JSON gateway (the cluster's client), the
// median and 95th percentile of CALLS calls each, and the client's CPU per call.
// Peers, as published: vSphere HA restarts VMs about 15 s after a host failure is detected;
// Proxmox HA about 120 s (its fencing reboots the node).
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../test/support/daemon.ts';
import { clusteredQemuPids } from '../test/support/cluster.ts';
import { startPartitionableCluster, type PartitionableCluster } from '../test/support/partition.ts';
import { EtcdClient } from '../src/cluster/etcd-client.ts';
import { TTL_SECONDS } from '../src/cluster/node-lease.ts';

const REPEAT = Number(process.env.REPEAT ?? 3);
const CALLS = Number(process.env.CALLS ?? 200);
const NODES = ['node1', 'node2', 'node3'];

interface GroupView { OwnerNode: string; State: string }
interface Row { kind: string; detection: number; fencing?: number; restart: number; guest: number; from: string; to: string }

const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

async function floor(etcd: EtcdClient): Promise<void> {
  const lease = await etcd.grant(TTL_SECONDS * 10);
  const kinds: [string, (i: number) => Promise<unknown>][] = [
    ['put', (i) => etcd.put(`/bench/k${i % 16}`, 'v')],
    ['txn (claim-like)', (i) => etcd.txn([{ key: `/bench/t${i}`, absent: true }], [{ put: `/bench/t${i}`, value: 'v', lease }])],
    ['keepalive', () => etcd.keepAlive(lease)],
  ];
  for (const [name, op] of kinds) {
    const ms: number[] = [];
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < CALLS; i++) {
      const t0 = performance.now();
      await op(i);
      ms.push(performance.now() - t0);
    }
    const cpu = process.cpuUsage(cpu0);
    process.stdout.write(`etcd ${name}: median ${pct(ms, 0.5).toFixed(1)} ms, p95 ${pct(ms, 0.95).toFixed(1)} ms, client CPU ${((cpu.user + cpu.system) / 1000 / CALLS).toFixed(2)} ms/call (${CALLS} calls)\n`);
  }
  await etcd.revoke(lease);
}

async function main(): Promise<void> {
  process.stdout.write(`cluster failover bench: load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}\n`);
  const c: PartitionableCluster = await startPartitionableCluster(NODES);
  const rows: Row[] = [];
  try {
    const etcd = new EtcdClient(c.etcd.endpoints);
    await floor(etcd);
    const t1 = c.t[0]!;
    await t1.ok('New-Cluster', '-Name', 'bench', '-Node', NODES.join(','));
    await t1.ok('New-VM', '-Name', 'b', '-MemoryStartupBytes', '192MB', '-NewVHDPath', join(c.shared, 'b.vhdx'), '-NewVHDSizeBytes', '16MB');
    await t1.ok('Add-ClusterVirtualMachineRole', '-VMName', 'b');
    await t1.ok('Start-ClusterGroup', 'b');
    const group = async (i: number): Promise<GroupView> => ((await c.daemons[i]!.api('GET', '/api/v1/cluster/groups')).json as GroupView[])[0]!;
    const nodeState = async (i: number, n: string): Promise<string> => ((await c.daemons[i]!.api('GET', `/api/v1/cluster/nodes?Name=${n}`)).json as { State: string }[])[0]!.State;

    /** Wait for the role on another node than `from`, as `watcher` sees it: [Down at, Online at, agent back at, new owner]. */
    const failover = async (from: number, watcher: number): Promise<[number, number, number, number]> => {
      await waitFor(`${NODES[from]} Down`, 60_000, async () => (await nodeState(watcher, NODES[from]!)) === 'Down');
      const downAt = Date.now();
      let to = -1;
      await waitFor('the role Online elsewhere', 120_000, async () => {
        const g = await group(watcher);
        to = NODES.indexOf(g.OwnerNode);
        return g.State === 'Online' && to !== from;
      });
      const onlineAt = Date.now();
      await c.t[to]!.heartbeat('b');
      return [downAt, onlineAt, Date.now(), to];
    };

    for (let r = 0; r < REPEAT * 2; r++) {
      const owner = NODES.indexOf((await group(0)).OwnerNode); // every node is Up between rounds
      await c.t[owner]!.heartbeat('b');
      const watcher = (owner + 1) % NODES.length;
      const partition = r < REPEAT;
      const t0 = Date.now();
      let offAt: number | undefined;
      if (partition) {
        c.partition(owner);
        await waitFor('the cut owner turns its VM off', 60_000, async () => (await clusteredQemuPids(c.daemons[owner]!)).length === 0);
        offAt = Date.now();
      } else {
        const pids = await clusteredQemuPids(c.daemons[owner]!);
        await c.daemons[owner]!.kill();
        for (const pid of pids) process.kill(pid, 'SIGKILL');
        await c.etcd.kill(owner);
      }
      const [downAt, onlineAt, guestAt, to] = await failover(owner, watcher);
      rows.push({
        kind: partition ? 'partition' : 'node death', detection: downAt - t0, ...(offAt !== undefined ? { fencing: offAt - t0 } : {}),
        restart: onlineAt - downAt, guest: guestAt - downAt, from: NODES[owner]!, to: NODES[to]!,
      });
      const row = rows.at(-1)!;
      process.stdout.write(`${row.kind} of ${row.from}: detection ${row.detection} ms, fencing ${row.fencing !== undefined ? `${row.fencing} ms` : '(in detection)'}, restart ${row.restart} ms on ${row.to}, guest back ${row.guest} ms after Down\n`);
      if (partition) {
        c.heal(owner);
        await waitFor(`${NODES[owner]} Up`, 60_000, async () => (await nodeState(watcher, NODES[owner]!)) === 'Up');
      } else {
        // The dead node comes back (member on its data dir, daemon relaunched) for the next round.
        c.etcd.restart(owner);
        await c.daemons[owner]!.launch();
        await waitFor(`${NODES[owner]} Up`, 60_000, async () => (await nodeState(watcher, NODES[owner]!)) === 'Up');
      }
    }
  } finally {
    await c.stop();
  }
  for (const kind of ['partition', 'node death']) {
    const rs = rows.filter((r) => r.kind === kind);
    if (rs.length === 0) continue;
    const med = (f: (r: Row) => number | undefined): string => {
      const xs = rs.map(f).filter((x): x is number => x !== undefined);
      return xs.length ? `${(pct(xs, 0.5) / 1000).toFixed(1)} s` : '—';
    };
    process.stdout.write(`median over ${rs.length} ${kind}s: detection ${med((r) => r.detection)}, fencing ${med((r) => r.fencing)}, restart ${med((r) => r.restart)}, `
      + `detection + restart ${med((r) => r.detection + r.restart)}, to the guest back ${med((r) => r.detection + r.guest)} (vSphere HA ~15 s after detection, Proxmox HA ~120 s)\n`);
  }
  process.stdout.write(`load average at the end ${loadavg().map((x) => x.toFixed(1)).join(' ')}\n`);
}

await main();
