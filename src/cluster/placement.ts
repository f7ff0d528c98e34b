// The leader's placement of ownerless roles (a dead node's VMs, or roles never placed): pure,
// from one snapshot of the cluster's keys. Roles go out one priority class at a time — High
// (3000), then Medium, then Low, then No Auto Start (0, placed but never started) — and a class
// waits while a higher one is still in flight (assigned and not yet claimed, or claimed and not
// yet Online or Failed), so High VMs start before Medium ones across the whole cluster. Each
// role goes to an Up node among its possible owners (all nodes when none are set) that has its
// startup memory free (the node's MemoryCapacity less what the roles it owns or was assigned
// will run), preferring a node with no role of the same anti-affinity class (soft, as in
// Hyper-V: a conflicting node is still used when it is the only one), then the fewest roles,
// counting what this plan already placed; ties by node name, so the plan is deterministic. A role
// no Up node may take stays ownerless and blocks nobody.
// Preemption: a role that fits nowhere only for memory may have lower-priority roles turned off
// on one node to make room — the node needing the fewest and lowest victims. One preemption at a
// time in the whole cluster: while a `preempt` record is pending nothing more is preempted. The
// victims become ownerless roles that still want to run, placed again when room appears.
// A drain (Suspend-ClusterNode -Drain) places the paused node's running roles by the same rules.
import { nodeState, type ClusterGroupRecord, type Snapshot } from './keys.ts';

export interface Placement { vmId: string; node: string }
/** Turn role `vmId` off on its owner `node` (owned under `token`) so that role `for` fits there. */
export interface Preemption { vmId: string; node: string; token: number; for: string }
export interface PlacementPlan { place: Placement[]; preempt: Preemption[] }

/** Memory a role takes on its node: only while it should run (an ownerless No Auto Start role is placed but not started). */
function demand(g: ClusterGroupRecord, owned: boolean): number {
  if (g.Persistent !== 'Online' || (!owned && g.Priority === 0)) return 0;
  return g.MemoryBytes ?? 0;
}

interface NodeBudget { roles: number; free: number; classes: Set<string> }

/** Up nodes (Paused and Down ones take nothing): how many roles each has, the memory left, the anti-affinity classes present. */
class Budgets {
  private readonly nodes = new Map<string, NodeBudget>();

  constructor(private readonly s: Snapshot, exclude?: string) {
    for (const n of [...s.nodes.keys()].sort()) {
      if (n === exclude || nodeState(s, n) !== 'Up') continue;
      this.nodes.set(n, { roles: 0, free: s.alive.get(n)?.MemoryCapacity ?? Infinity, classes: new Set() });
    }
    for (const [id, o] of s.owners) this.charge(o.Node, s.groups.get(id), true);
    for (const [id, a] of s.assigns) if (!s.owners.has(id)) this.charge(a.Node, s.groups.get(id), false);
  }

  get size(): number {
    return this.nodes.size;
  }

  charge(node: string, g: ClusterGroupRecord | undefined, owned: boolean): void {
    const b = this.nodes.get(node);
    if (!b) return;
    b.roles++;
    if (!g) return;
    b.free -= demand(g, owned);
    for (const c of g.AntiAffinityClassNames ?? []) b.classes.add(c);
  }

  /** Up nodes among the role's possible owners. */
  candidates(g: ClusterGroupRecord): [string, NodeBudget][] {
    return [...this.nodes.entries()].filter(([n]) => g.OwnerNodes.length === 0 || g.OwnerNodes.includes(n));
  }

  /**
   * The node the role goes to (charged for it), `undefined` when none may take it, 'memory' when
   * some may but none has room. `owned`: a role that runs now (a drain's) needs its memory anyway.
   */
  pick(g: ClusterGroupRecord, owned = false): string | 'memory' | undefined {
    const all = this.candidates(g);
    if (all.length === 0) return undefined;
    const need = demand(g, owned);
    const fits = all.filter(([, b]) => b.free >= need);
    if (fits.length === 0) return 'memory';
    const classes = g.AntiAffinityClassNames ?? [];
    const apart = fits.filter(([, b]) => !classes.some((c) => b.classes.has(c)));
    const pool = apart.length > 0 ? apart : fits;
    const [node] = pool.reduce((best, cur) => (cur[1].roles < best[1].roles ? cur : best));
    this.charge(node, g, owned);
    return node;
  }

  /** The lower-priority roles to turn off on one node so that `g` fits there, or none. */
  preemptFor(vmId: string, g: ClusterGroupRecord): Preemption[] | undefined {
    const need = demand(g, false);
    let best: { victims: Preemption[]; worst: number } | undefined;
    for (const [node, b] of this.candidates(g)) {
      const running = [...this.s.owners.entries()]
        .filter(([id, o]) => o.Node === node && !this.s.moves.has(id))
        .map(([id, o]) => ({ id, o, v: this.s.groups.get(id)! }))
        .filter(({ v }) => v !== undefined && v.Priority < g.Priority && demand(v, true) > 0)
        .sort((a, c) => a.v.Priority - c.v.Priority || demand(c.v, true) - demand(a.v, true) || a.id.localeCompare(c.id));
      let free = b.free;
      const victims: Preemption[] = [];
      let worst = 0;
      for (const { id, o, v } of running) {
        if (free >= need) break;
        free += demand(v, true);
        worst = Math.max(worst, v.Priority);
        victims.push({ vmId: id, node, token: o.modRevision, for: vmId });
      }
      if (free < need) continue;
      if (!best || worst < best.worst || (worst === best.worst && victims.length < best.victims.length)) best = { victims, worst };
    }
    return best?.victims;
  }
}

/** Drain: where each role `node` owns goes (highest priority first); a role no Up node may take (or has room for) is left out. */
export function planDrain(s: Snapshot, node: string): Placement[] {
  const budgets = new Budgets(s, node);
  const owned = [...s.owners.entries()].filter(([id, o]) => o.Node === node && s.groups.has(id))
    .map(([id]) => [id, s.groups.get(id)!] as const)
    .sort(([a, ga], [b, gb]) => gb.Priority - ga.Priority || ga.Name.localeCompare(gb.Name) || a.localeCompare(b));
  return owned.flatMap(([vmId, g]) => {
    const to = budgets.pick(g, true);
    return to === undefined || to === 'memory' ? [] : [{ vmId, node: to }];
  });
}

/** A role still moving toward its desired state: lower classes wait for it. */
function inFlight(s: Snapshot, vmId: string): boolean {
  const g = s.groups.get(vmId)!;
  const owner = s.owners.get(vmId);
  if (!owner) return s.assigns.has(vmId) && nodeState(s, s.assigns.get(vmId)!.Node) === 'Up';
  if (g.Persistent !== 'Online' || g.Priority === 0) return false;
  const st = s.states.get(vmId);
  return !(st && st.Node === owner.Node && (st.State === 'Online' || st.State === 'Failed'));
}

export function planPlacements(s: Snapshot): PlacementPlan {
  const plan: PlacementPlan = { place: [], preempt: [] };
  const budgets = new Budgets(s);
  if (budgets.size === 0) return plan;
  // Ownerless roles not (validly) assigned: an assignment to a node that went down is redone.
  const waiting = [...s.groups.entries()]
    .filter(([id, g]) => !g.Removing && !s.owners.has(id) && !(s.assigns.has(id) && nodeState(s, s.assigns.get(id)!.Node) === 'Up'))
    .sort(([a, ga], [b, gb]) => gb.Priority - ga.Priority || ga.Name.localeCompare(gb.Name) || a.localeCompare(b));
  // The classes with a role in flight, found once (per waiting role it would be every role again: 500 × 8,000 at scale).
  let busiest = -1;
  for (const [id, g] of s.groups) if (g.Priority > busiest && inFlight(s, id)) busiest = g.Priority;
  for (const [vmId, g] of waiting) {
    // Placed by this plan: in flight from now on too (the list is sorted: the first placed is of the highest class).
    if (plan.place.length > 0) busiest = Math.max(busiest, s.groups.get(plan.place[0]!.vmId)!.Priority);
    if (busiest > g.Priority) break; // sorted by priority: every later role is this class or lower
    const node = budgets.pick(g);
    if (node === 'memory') {
      if (s.preempts.size > 0) continue; // one preemption at a time: this role waits for its room
      const victims = budgets.preemptFor(vmId, g);
      if (victims === undefined) continue; // no room even so: it waits, blocking nobody
      plan.preempt = victims;
      break; // the room is for this role: lower ones wait for the next pass
    }
    if (node !== undefined) plan.place.push({ vmId, node });
  }
  return plan;
}
