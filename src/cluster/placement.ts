// The leader's placement of ownerless roles (a dead node's VMs, or roles never placed): pure,
// from one snapshot of the cluster's keys. Roles go out one priority class at a time — High
// (3000), then Medium, then Low, then No Auto Start (0, placed but never started) — and a class
// waits while a higher one is still in flight (assigned and not yet claimed, or claimed and not
// yet Online or Failed), so High VMs start before Medium ones across the whole cluster. Each
// role goes to the Up node among its possible owners (all nodes when none are set) with the
// fewest roles, counting what this plan already placed; ties by node name, so the plan is
// deterministic. A role no Up node may take stays ownerless and blocks nobody.
// A drain (Suspend-ClusterNode -Drain) places the paused node's running roles by the same rule.
import { nodeState, type ClusterGroupRecord, type Snapshot } from './keys.ts';

export interface Placement { vmId: string; node: string }

/** A role still moving toward its desired state: lower classes wait for it. */
function inFlight(s: Snapshot, vmId: string): boolean {
  const g = s.groups.get(vmId)!;
  const owner = s.owners.get(vmId);
  if (!owner) return s.assigns.has(vmId) && nodeState(s, s.assigns.get(vmId)!.Node) === 'Up';
  if (g.Persistent !== 'Online' || g.Priority === 0) return false;
  const st = s.states.get(vmId);
  return !(st && st.Node === owner.Node && (st.State === 'Online' || st.State === 'Failed'));
}

/** Up nodes (Paused and Down ones take nothing) and how many roles each owns. */
function upLoad(s: Snapshot): Map<string, number> {
  const load = new Map([...s.nodes.keys()].filter((n) => nodeState(s, n) === 'Up').sort().map((n) => [n, 0]));
  for (const o of s.owners.values()) if (load.has(o.Node)) load.set(o.Node, load.get(o.Node)! + 1);
  return load;
}

/** The least loaded Up node among the role's possible owners (counted in `load`), or none. */
function leastLoaded(load: Map<string, number>, g: ClusterGroupRecord): string | undefined {
  const candidates = [...load.keys()].filter((n) => g.OwnerNodes.length === 0 || g.OwnerNodes.includes(n));
  if (candidates.length === 0) return undefined;
  const node = candidates.reduce((best, n) => (load.get(n)! < load.get(best)! ? n : best));
  load.set(node, load.get(node)! + 1);
  return node;
}

/** Drain: where each role `node` owns goes (highest priority first); a role no Up node may take is left out. */
export function planDrain(s: Snapshot, node: string): Placement[] {
  const load = upLoad(s);
  load.delete(node);
  const owned = [...s.owners.entries()].filter(([id, o]) => o.Node === node && s.groups.has(id))
    .map(([id]) => [id, s.groups.get(id)!] as const)
    .sort(([a, ga], [b, gb]) => gb.Priority - ga.Priority || ga.Name.localeCompare(gb.Name) || a.localeCompare(b));
  return owned.flatMap(([vmId, g]) => {
    const to = leastLoaded(load, g);
    return to === undefined ? [] : [{ vmId, node: to }];
  });
}

export function planPlacements(s: Snapshot): Placement[] {
  const load = upLoad(s);
  if (load.size === 0) return [];
  // Ownerless roles not (validly) assigned: an assignment to a node that went down is redone.
  const waiting = [...s.groups.entries()]
    .filter(([id, g]) => !g.Removing && !s.owners.has(id) && !(s.assigns.has(id) && nodeState(s, s.assigns.get(id)!.Node) === 'Up'))
    .sort(([a, ga], [b, gb]) => gb.Priority - ga.Priority || ga.Name.localeCompare(gb.Name) || a.localeCompare(b));
  const plan: Placement[] = [];
  for (const [vmId, g] of waiting) {
    const higherBusy = [...s.groups.entries()].some(([id, o]) => o.Priority > g.Priority && inFlight(s, id))
      || plan.some((p) => s.groups.get(p.vmId)!.Priority > g.Priority);
    if (higherBusy) break; // sorted by priority: every later role is this class or lower
    const node = leastLoaded(load, g);
    if (node !== undefined) plan.push({ vmId, node });
  }
  return plan;
}
