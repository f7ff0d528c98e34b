// Drain on shutdown (Hyper-V 2012 R2's): a cluster node's daemon asked to stop (SIGTERM, what
// `systemctl stop` and a machine's shutdown send) first moves its running roles live to other
// nodes, as Suspend-ClusterNode -Drain does, and only then leaves. The drain is bounded: past
// the timeout the roles still here are turned off by the leave that follows (ClusterNode.close),
// with an event naming them, and whichever node then takes their keys starts them cold.
// The node is Paused only while it drains: it comes back Up when its daemon starts again (the
// record is restored once the lease is gone, so nobody places a role on a node that is leaving).
import type { ClusterAdmin } from './cluster-admin.ts';
import type { ClusterNode } from './cluster-node.ts';
import { nodeKey, nodeState, type NodeRecord } from './keys.ts';

/** Default bound of the drain; the systemd unit's TimeoutStopSec leaves room above it. */
export const SHUTDOWN_DRAIN_TIMEOUT_MS = 120_000;

export interface ShutdownDrain {
  /** The node's record as it was before the drain paused it: put back after the leave. */
  restore(): Promise<void>;
}

/** Move this node's running roles away (bounded by `timeoutMs`); `log` gets one line per step (journald). */
export async function drainOnShutdown(node: ClusterNode, admin: ClusterAdmin, timeoutMs: number, log: (line: string) => void): Promise<ShutdownDrain> {
  const nothing: ShutdownDrain = { restore: async () => undefined };
  const s = await node.read();
  const rec = s.nodes.get(node.name);
  if (!s.config || !rec || nodeState(s, node.name) === 'Down') return nothing;
  const running = [...s.owners.entries()].filter(([id, o]) => o.Node === node.name && s.states.get(id)?.State === 'Online').map(([id]) => s.groups.get(id)?.Name ?? id);
  const restore = async (): Promise<void> => {
    // Whatever the drain wrote meanwhile (DrainStatus, Drained) is this shutdown's, not the node's.
    await node.etcd.put(nodeKey(node.name), JSON.stringify(rec satisfies NodeRecord));
  };
  if (running.length === 0) return nothing;
  log(`draining ${running.length} clustered role(s) to other nodes: ${running.join(', ')} (at most ${Math.round(timeoutMs / 1000)} s)`);
  node.event('Information', 'CLUSTER_NODE_SHUTDOWN_DRAIN', `Node ${node.name} is stopping: its running roles (${running.join(', ')}) move live to other nodes first`);
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), timeoutMs); });
  const outcome = await Promise.race([admin.suspendNode(node.name, true).then((v) => v.DrainStatus), expired])
    .catch((e: unknown) => `failed: ${(e as Error).message}`)
    .finally(() => clearTimeout(timer));
  const after = await node.read();
  const left = [...after.owners.entries()].filter(([id, o]) => o.Node === node.name && after.states.get(id)?.State === 'Online').map(([id]) => after.groups.get(id)?.Name ?? id);
  if (left.length > 0) {
    const why = outcome === 'timeout' ? `the drain did not finish within ${Math.round(timeoutMs / 1000)} s` : `the drain ended ${outcome}`;
    node.event('Warning', 'CLUSTER_NODE_SHUTDOWN_DRAIN_INCOMPLETE', `Node ${node.name} is stopping and ${why}: ${left.join(', ')} are turned off here and start again on another node`);
  }
  log(`drain ${outcome === 'timeout' ? 'timed out' : outcome}: ${running.length - left.length} moved, ${left.length} left to turn off`);
  return { restore };
}
