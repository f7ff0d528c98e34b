// Drain on shutdown (Hyper-V 2012 R2's): a cluster node's daemon asked to stop (SIGTERM, what
// `systemctl stop` and a machine's shutdown send) first moves its running roles live to other
// nodes, as Suspend-ClusterNode -Drain does, and only then leaves. The drain is bounded: past
// the timeout the roles still here are turned off by the leave that follows (ClusterNode.close),
// with an event naming them, and whichever node then takes their keys starts them cold.
// The node is Paused only while it drains: it comes back Up when its daemon starts again (the
// record is restored once the lease is gone, so nobody places a role on a node that is leaving).
import type { ClusterAdmin } from './cluster-admin.ts';
import type { ClusterNode } from './cluster-node.ts';
import { nodeKey, nodeState, type NodeRecord, type Snapshot } from './keys.ts';

/** Default bound of the drain; the systemd unit's TimeoutStopSec leaves room above it. */
export const SHUTDOWN_DRAIN_TIMEOUT_MS = 120_000;

export interface ShutdownDrain {
  /** The node's record as it was before the drain paused it: put back after the leave. */
  restore(): Promise<void>;
}

/** Names of the roles `node` owns that run (state Online): what a drain moves, and what it left. */
export function runningRoles(s: Snapshot, node: string): string[] {
  return [...s.owners.entries()].filter(([id, o]) => o.Node === node && s.states.get(id)?.State === 'Online').map(([id]) => s.groups.get(id)?.Name ?? id);
}

/**
 * Run `drain` for at most `timeoutMs`: its outcome (the DrainStatus), `failed: why`, or
 * 'timeout' — then its signal is aborted, so a drain still waiting for its moves writes nothing
 * more (its late DrainStatus would land after the leave put the node's record back).
 */
export async function boundedDrain(drain: (signal: AbortSignal) => Promise<string>, timeoutMs: number): Promise<string> {
  const stop = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<'timeout'>((r) => { timer = setTimeout(() => { r('timeout'); stop.abort(); }, timeoutMs); }); // settled first: the race is the timeout's
  return Promise.race([drain(stop.signal), expired])
    .catch((e: unknown) => `failed: ${(e as Error).message}`)
    .finally(() => clearTimeout(timer));
}

/** Move this node's running roles away (bounded by `timeoutMs`); `log` gets one line per step (journald). */
export async function drainOnShutdown(node: ClusterNode, admin: ClusterAdmin, timeoutMs: number, log: (line: string) => void): Promise<ShutdownDrain> {
  const nothing: ShutdownDrain = { restore: async () => undefined };
  const s = await node.read();
  const rec = s.nodes.get(node.name);
  if (!s.config || !rec || nodeState(s, node.name) === 'Down') return nothing;
  const running = runningRoles(s, node.name);
  const restore = async (): Promise<void> => {
    // Whatever the drain wrote meanwhile (DrainStatus, Drained) is this shutdown's, not the node's.
    await node.etcd.put(nodeKey(node.name), JSON.stringify(rec satisfies NodeRecord));
  };
  if (running.length === 0) return nothing;
  log(`draining ${running.length} clustered role(s) to other nodes: ${running.join(', ')} (at most ${Math.round(timeoutMs / 1000)} s)`);
  node.event('Information', 'CLUSTER_NODE_SHUTDOWN_DRAIN', `Node ${node.name} is stopping: its running roles (${running.join(', ')}) move live to other nodes first`);
  const outcome = await boundedDrain((signal) => admin.suspendNode(node.name, true, signal).then((v) => v.DrainStatus), timeoutMs);
  const left = runningRoles(await node.read(), node.name);
  if (left.length > 0) {
    const why = outcome === 'timeout' ? `the drain did not finish within ${Math.round(timeoutMs / 1000)} s` : `the drain ended ${outcome}`;
    node.event('Warning', 'CLUSTER_NODE_SHUTDOWN_DRAIN_INCOMPLETE', `Node ${node.name} is stopping and ${why}: ${left.join(', ')} are turned off here and start again on another node`);
  }
  log(`drain ${outcome === 'timeout' ? 'timed out' : outcome}: ${running.length - left.length} moved, ${left.length} left to turn off`);
  return { restore };
}
