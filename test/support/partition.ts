// Test support: a test cluster (cluster.ts) whose nodes can be cut off from the others and healed.
//
// How a node is partitioned, and why that is faithful. On real machines a node cut off the
// network keeps its own etcd member (same machine) but reaches no other member, and no other
// member reaches it. Here:
//   - its etcd member is frozen (SIGSTOP). Its peers see what dropped packets give them: their
//     connections to it stay open and go silent; if it led etcd they elect a new leader after the
//     election timeout. Its own daemon, whose first endpoint it is, sees its requests hang until the
//     client's timeout, as a member cut off from the others answers nothing that needs the
//     majority (a keepalive, a read, a write) — it has no leader.
//   - the node's daemon reaches the other members only through TcpRelays (one per other member),
//     which are cut: every byte dropped, new connections accepted and then silent (a DROP rule).
// What differs from a real partition: a cut-off member would campaign with ever higher terms and,
// healed, could force one election (etcd 3.4 has pre-vote off by default); a frozen one does not
// campaign while frozen, though on SIGCONT its missed heartbeats make it campaign at once, which
// is much the same. Daemon-to-daemon traffic (the API, live moves) is not cut: the test reaches
// every node's API throughout, as an administrator on that node's console would.
// No nft/iptables is installed here, and network namespaces would need every daemon, its QEMUs
// and its NBD server moved into one; a frozen member and cut links are the same faults to etcd's
// client and peers without that.
import { TcpRelay } from './tcp-relay.ts';
import { startCluster, type TestCluster } from './cluster.ts';

export interface PartitionableCluster extends TestCluster {
  /** Cut node i off: its etcd member frozen, its daemon's links to the other members cut. */
  partition(i: number): void;
  heal(i: number): void;
}

/** `args`: more vmhostd arguments for node i (e.g. the lease's timing); `etcdArgs`: more flags for every etcd member. */
export async function startPartitionableCluster(names: readonly string[], args?: (i: number) => string[], etcdArgs?: string[]): Promise<PartitionableCluster> {
  // links[i]: node i's daemon to every other member (its own member is reached directly, as on one machine).
  const links: TcpRelay[][] = names.map(() => []);
  const cluster = await startCluster(names, { endpoints: async (etcd, i) => {
    const urls = [etcd.members[i]!.clientUrl];
    for (let j = 0; j < etcd.members.length; j++) {
      if (j === i) continue;
      const member = new URL(etcd.members[j]!.clientUrl);
      const link = await TcpRelay.start({ host: member.hostname, port: Number(member.port) });
      links[i]!.push(link);
      urls.push(`${member.protocol}//127.0.0.1:${link.port}`);
    }
    return urls.join(',');
  }, args, etcdArgs });
  const paused = new Set<number>();
  return {
    ...cluster,
    partition(i) {
      paused.add(i);
      cluster.etcd.pause(i);
      for (const l of links[i]!) l.cut();
    },
    heal(i) {
      for (const l of links[i]!) l.heal();
      cluster.etcd.resume(i);
      paused.delete(i);
    },
    async stop() {
      for (const i of paused) cluster.etcd.resume(i);
      await cluster.stop();
      for (const l of links.flat()) await l.close();
    },
  };
}
