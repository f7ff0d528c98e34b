// Which node coordinates each Cluster Shared Volume: pure, from the volumes, the Up nodes and
// the current coordinators. A volume without a coordinator on an Up node gets the Up node
// coordinating the fewest volumes (ties by name); then, while one node coordinates two or more
// volumes than another, one volume moves from the busiest to the idlest — so a node that joins
// takes its share, and volumes spread evenly (Windows' "balanced" CSV ownership). Volumes and
// nodes are visited in name order, so the plan is deterministic.

export interface CoordinatorChange { volume: string; node: string; from?: string }

export function planCoordinators(volumes: readonly string[], up: readonly string[], coords: ReadonlyMap<string, string>): CoordinatorChange[] {
  if (up.length === 0) return [];
  const nodes = [...up].sort();
  const owner = new Map<string, string>();
  const load = new Map(nodes.map((n) => [n, 0]));
  const plan = new Map<string, CoordinatorChange>();
  for (const v of [...volumes].sort()) {
    const c = coords.get(v);
    if (c !== undefined && load.has(c)) { owner.set(v, c); load.set(c, load.get(c)! + 1); }
  }
  const idlest = (): string => nodes.reduce((best, n) => (load.get(n)! < load.get(best)! ? n : best));
  const busiest = (): string => nodes.reduce((best, n) => (load.get(n)! > load.get(best)! ? n : best));
  const give = (v: string, to: string): void => {
    const from = owner.get(v);
    if (from !== undefined) load.set(from, load.get(from)! - 1);
    owner.set(v, to);
    load.set(to, load.get(to)! + 1);
    const was = coords.get(v);
    if (was === to) plan.delete(v);
    else plan.set(v, { volume: v, node: to, ...(was !== undefined ? { from: was } : {}) });
  };
  for (const v of [...volumes].sort()) if (!owner.has(v)) give(v, idlest());
  for (;;) {
    const hi = busiest(), lo = idlest();
    if (load.get(hi)! - load.get(lo)! <= 1) break;
    const v = [...owner.entries()].filter(([, n]) => n === hi).map(([vol]) => vol).sort().at(-1)!;
    give(v, lo);
  }
  return [...plan.values()].sort((a, b) => a.volume.localeCompare(b.volume));
}
