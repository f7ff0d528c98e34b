// The dynamic memory balancer's decision, as a pure function: from each dynamic VM's demand,
// bounds, priority and current assignment, and the host's cap, the memory each VM should hold
// next. No I/O and no clock: the daemon's driver (vm-memory.ts) runs it every second and
// carries out the targets through the balloon and virtio-mem. Depends on nothing.
//
// The rules, as Hyper-V 2012 R2's:
// - a VM never goes below its minimum nor above its maximum;
// - what a VM wants is its demand (memory in use plus its Buffer %), within those bounds;
// - the host keeps its reserve: VMs share the cap less the reserve less what static VMs hold;
// - when the host is short, higher Priority VMs get memory first; VMs of equal priority share
//   what is left in proportion to what they lack;
// - growth only takes memory that is free now: memory another VM is giving back becomes free
//   when its balloon has inflated, so the cap holds at every instant, not just in the end.

/** Memory moves in whole 2 MiB units (Hyper-V's unit, virtio-mem's block size). */
export const MEMORY_UNIT = 2 * 1024 * 1024;

export interface BalancerVm {
  id: string;
  minimumBytes: number;
  maximumBytes: number;
  /** What the VM holds now (balloon actual + plugged virtio-mem). */
  assignedBytes: number;
  /** Memory the guest uses plus its Buffer % (Hyper-V's MemoryDemand with the buffer). */
  demandBytes: number;
  /** Hyper-V's memory weight, 0–100. */
  priority: number;
}

export interface BalancerHost {
  /** The memory the host hands out to VMs (--memory-capacity, else the machine's). */
  capacityBytes: number;
  /** Kept back for the host itself. */
  reserveBytes: number;
  /** Held by VMs whose memory does not move (static memory, or starting). */
  fixedBytes: number;
}

export interface BalancerTarget {
  id: string;
  /** What the VM should hold after this round. */
  targetBytes: number;
  /** What it would hold if the host had enough (its demand within its bounds). */
  desiredBytes: number;
}

const alignDown = (n: number) => Math.floor(n / MEMORY_UNIT) * MEMORY_UNIT;
const alignUp = (n: number) => Math.ceil(n / MEMORY_UNIT) * MEMORY_UNIT;
const clamp = (n: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, n));

/** What each VM wants: its demand rounded up to the unit, within its bounds. */
function desiredOf(vm: BalancerVm): number {
  return clamp(alignUp(vm.demandBytes), vm.minimumBytes, vm.maximumBytes);
}

/**
 * Share `budget` among claims by priority, highest first; within one priority in proportion
 * to each claim. Returns the grant per index; no grant exceeds its claim, the grants never sum
 * above the budget, and each is a whole number of units.
 */
export function shareByPriority(claims: readonly { claim: number; priority: number }[], budget: number): number[] {
  const grants = claims.map(() => 0);
  let left = Math.max(0, alignDown(budget));
  const groups = new Map<number, number[]>();
  claims.forEach((c, i) => {
    if (c.claim <= 0) return;
    const g = groups.get(c.priority);
    if (g) g.push(i); else groups.set(c.priority, [i]);
  });
  for (const p of [...groups.keys()].sort((a, b) => b - a)) {
    const group = groups.get(p)!;
    const want = group.reduce((s, i) => s + claims[i]!.claim, 0);
    if (want <= left) {
      for (const i of group) grants[i] = claims[i]!.claim;
      left -= want;
      continue;
    }
    // Short: proportional shares rounded down, then the units rounding left over go one each
    // to the largest claims, so the whole budget is used.
    for (const i of group) grants[i] = alignDown((claims[i]!.claim * left) / want);
    let rest = left - group.reduce((s, i) => s + grants[i]!, 0);
    for (const i of [...group].sort((a, b) => claims[b]!.claim - claims[a]!.claim)) {
      if (rest < MEMORY_UNIT) break;
      if (grants[i]! + MEMORY_UNIT <= claims[i]!.claim) { grants[i]! += MEMORY_UNIT; rest -= MEMORY_UNIT; }
    }
    left = 0;
  }
  return grants;
}

/**
 * The next targets. A VM's target is its minimum plus its share of the memory above the
 * minimums; when even the minimums exceed what the host has, every VM is held at its minimum
 * (the driver reports the host as overcommitted). Growth is limited to memory free now.
 */
export function balance(vms: readonly BalancerVm[], host: BalancerHost): BalancerTarget[] {
  const available = host.capacityBytes - host.reserveBytes - host.fixedBytes;
  const desired = vms.map(desiredOf);
  const floor = vms.reduce((s, v) => s + v.minimumBytes, 0);
  const above = shareByPriority(vms.map((v, i) => ({ claim: desired[i]! - v.minimumBytes, priority: v.priority })), available - floor);
  const ideal = vms.map((v, i) => v.minimumBytes + above[i]!);
  // Shrinking happens at once; growth waits for memory that is free at this instant.
  const freeNow = available - vms.reduce((s, v) => s + v.assignedBytes, 0);
  const growth = shareByPriority(vms.map((v, i) => ({ claim: Math.max(0, ideal[i]! - v.assignedBytes), priority: v.priority })), freeNow);
  return vms.map((v, i) => {
    const target = ideal[i]! <= v.assignedBytes ? ideal[i]! : v.assignedBytes + growth[i]!;
    return { id: v.id, targetBytes: clamp(target, v.minimumBytes, v.maximumBytes), desiredBytes: desired[i]! };
  });
}

/**
 * Hyper-V's MemoryStatus: "OK" while the VM holds its demand, "Low" while it holds what the
 * guest uses but less than the buffer on top, "Warning" when it holds less than it uses
 * (the guest reclaims or pages). Empty for a VM whose memory is not dynamic.
 */
export type MemoryStatus = 'OK' | 'Low' | 'Warning' | '';

export function memoryStatus(assignedBytes: number, usedBytes: number, demandBytes: number): MemoryStatus {
  // Within a few units of the demand counts as holding it: the balloon settles a page or so
  // off its target, and a status that flips every second says nothing.
  if (assignedBytes + STATUS_SLACK >= demandBytes) return 'OK';
  return assignedBytes >= usedBytes ? 'Low' : 'Warning';
}

const STATUS_SLACK = 2 * MEMORY_UNIT;

/** Demand = memory in use plus Buffer % of it (Hyper-V's Buffer: 5–2000). */
export function demandOf(usedBytes: number, bufferPercent: number): number {
  return Math.round(usedBytes * (1 + bufferPercent / 100));
}
