// Resource pools in the daemon: the book of pools and members (resource-pools.ts, pure) kept
// in DIR/resource-pools.json, written before memory changes at every command; and the metered
// pools' counts (pool-metering.ts, pure) in DIR/resource-pool-metering.json, fed by VmMetering's
// 1 s sampler (the same readings Measure-VM counts, so a pool's numbers and its members' agree)
// and saved every ResourceMeteringSaveInterval and when the daemon stops.
import { join } from 'node:path';
import { VmhostError } from '../common/index.ts';
import { readJson, writeFileAtomic } from './atomic-file.ts';
import { resetMeteringState, type MeteringReport, type Sample } from './metering-state.ts';
import { applyPoolSample, newPoolMetering, poolReport, restartedPool, type MemberSample, type PoolMeteringState } from './pool-metering.ts';
import {
  addPaths, addSwitch, createPools, emptyBook, isMeteredType, listPools, membersUnder, poolOf, poolsNamed, pruneMembers, removePaths, removePool, removeSwitch, renamePool, setMember, setMetering, setParent, switchesOf,
  METERED_POOL_TYPES, STORAGE_TYPES, type MeteredPoolType, type NewPool, type PoolBook, type PoolMember, type PoolType, type ResourcePool,
} from './resource-pools.ts';
import type { VmEntry } from './vm-entry.ts';
import { SerialLock } from './vm-lock.ts';
import type { VmSources } from './vm-metering.ts';

export interface PoolsHost {
  dataDir: string;
  computerName: string;
  entries(): Iterable<VmEntry>;
  resolve(nameOrId: string): VmEntry;
  hostMhz(): number;
  saveIntervalMs(): number;
  /** The virtual switches (Add-VMSwitch -ResourcePoolName). */
  switches(): { id: string; name: string }[];
}

export interface PoolView {
  Name: string;
  ResourcePoolType: PoolType;
  ParentName: string | null;
  Paths: string[];
  ResourceMeteringEnabled: boolean;
  ComputerName: string;
  /** vmhost: what is in the pool (Hyper-V lists it per device, as PoolName). */
  Members: { VMName: string; VMId: string; DeviceId: string | null; DeviceName: string | null }[];
  /** An Ethernet pool's switches (Add-VMSwitch), in the order they joined. */
  Switches: string[];
}

const poolKey = (p: { type: PoolType; name: string }) => `${p.type}:${p.name.toLowerCase()}`;
const memberKey = (m: PoolMember) => `${m.vmId}/${m.deviceId ?? 'vm'}`;

export class ResourcePools {
  private book: PoolBook = emptyBook();
  /** Metered pools' counts, by `<type>:<name>`. */
  private counts = new Map<string, PoolMeteringState>();
  private readonly lock = new SerialLock();
  private savedAt = 0;

  constructor(private readonly host: PoolsHost) {}

  private get bookFile(): string { return join(this.host.dataDir, 'resource-pools.json'); }
  private get countsFile(): string { return join(this.host.dataDir, 'resource-pool-metering.json'); }

  /** After the VMs are loaded: members whose VM or device is gone leave. */
  async load(): Promise<void> {
    const book = await readJson<PoolBook>(this.bookFile).catch(() => undefined);
    if (book?.version === 1) this.book = this.pruned({ ...book, switches: book.switches ?? [] });
    const counts = await readJson<Record<string, PoolMeteringState>>(this.countsFile).catch(() => ({}));
    for (const p of this.book.pools) {
      const c = (counts as Record<string, PoolMeteringState>)[poolKey(p)];
      if (p.meteringEnabled) this.counts.set(poolKey(p), c?.version === 1 ? restartedPool(c) : newPoolMetering(new Date().toISOString()));
    }
    this.savedAt = Date.now();
  }

  async close(): Promise<void> {
    await this.saveCounts();
  }

  private pruned(b: PoolBook): PoolBook {
    const switches = new Set(this.host.switches().map((w) => w.id));
    return pruneMembers(b, (m) => this.exists(m), (id) => switches.has(id));
  }

  private exists(m: PoolMember): boolean {
    const e = [...this.host.entries()].find((x) => x.config.id === m.vmId);
    if (!e) return false;
    if (m.type === 'VHD') return e.config.hardDrives.some((d) => d.id === m.deviceId);
    if (m.type === 'Ethernet') return e.config.networkAdapters.some((a) => a.id === m.deviceId);
    return true;
  }

  /** One change of the book: written first, then it is the book (the counts follow a rename or removal). */
  private change(f: (b: PoolBook) => PoolBook, counts?: (c: Map<string, PoolMeteringState>) => void): Promise<void> {
    return this.lock.run(async () => {
      // Members whose VM or device went (Remove-VM, Remove-VMHardDiskDrive) leave first: they hold no pool in use.
      const next = this.pruned(f(this.pruned(this.book)));
      await writeFileAtomic(this.bookFile, JSON.stringify(next, null, 2) + '\n');
      this.book = next;
      counts?.(this.counts);
    });
  }

  private view(p: ResourcePool): PoolView {
    const vms = new Map([...this.host.entries()].map((e) => [e.config.id, e]));
    const switchNames = new Map(this.host.switches().map((w) => [w.id, w.name]));
    const members = isMeteredType(p.type) && p.name !== 'Primordial' ? this.book.members.filter((m) => m.type === p.type && m.pool === p.name && this.exists(m)) : [];
    return {
      Name: p.name, ResourcePoolType: p.type, ParentName: p.parent || null, Paths: p.paths, ResourceMeteringEnabled: p.meteringEnabled, ComputerName: this.host.computerName,
      Switches: p.type === 'Ethernet' ? switchesOf(this.book, p.name).flatMap((id) => switchNames.get(id) ?? []) : [],
      Members: members.map((m) => {
        const e = vms.get(m.vmId);
        const device = m.type === 'VHD' ? e?.config.hardDrives.find((d) => d.id === m.deviceId)?.path : e?.config.networkAdapters.find((a) => a.id === m.deviceId)?.name;
        return { VMName: e?.config.name ?? '', VMId: m.vmId, DeviceId: m.deviceId, DeviceName: device ?? null };
      }),
    };
  }

  /** Get-VMResourcePool. */
  list(name?: string, types?: readonly PoolType[]): PoolView[] {
    const found = listPools(this.book, name, types);
    if (name !== undefined && found.length === 0) {
      throw new VmhostError('RESOURCE_POOL_NOT_FOUND', `No resource pool named '${name}'`, { pool: name });
    }
    return found.map((p) => this.view(p));
  }

  /** New-VMResourcePool. */
  async create(p: NewPool): Promise<PoolView[]> {
    await this.change((b) => createPools(b, p));
    return this.list(p.name, p.types);
  }

  /** Set-VMResourcePool -ParentName. */
  async setParent(name: string, types: readonly PoolType[] | undefined, parent: string): Promise<PoolView[]> {
    await this.change((b) => poolsNamed(b, name, types).reduce((acc, p) => setParent(acc, acc.pools.find((x) => x.type === p.type && x.name === p.name)!, parent), b));
    return this.list(name, types);
  }

  /** Rename-VMResourcePool: a metered pool's counts go with it. */
  async rename(name: string, types: readonly PoolType[] | undefined, newName: string): Promise<PoolView[]> {
    const pools = poolsNamed(this.book, name, types);
    await this.change((b) => pools.reduce((acc, p) => renamePool(acc, acc.pools.find((x) => x.type === p.type && x.name === p.name)!, newName), b), (counts) => {
      for (const p of pools) {
        const c = counts.get(poolKey(p));
        counts.delete(poolKey(p));
        if (c) counts.set(poolKey({ type: p.type, name: newName }), c);
      }
    });
    return this.list(newName.trim(), pools.map((p) => p.type));
  }

  /** Remove-VMResourcePool. */
  async remove(name: string, types: readonly PoolType[] | undefined): Promise<void> {
    const pools = poolsNamed(this.book, name, types);
    await this.change((b) => pools.reduce((acc, p) => removePool(acc, acc.pools.find((x) => x.type === p.type && x.name === p.name)!), b), (counts) => {
      for (const p of pools) counts.delete(poolKey(p));
    });
  }

  /** Add-VMSwitch -ResourcePoolName / Remove-VMSwitch -ResourcePoolName: a switch into or out of Ethernet pools. */
  async setSwitchPools(switchName: string, pools: readonly string[], join: boolean): Promise<PoolView[]> {
    const sw = this.host.switches().find((w) => w.name.toLowerCase() === switchName.toLowerCase());
    if (!sw) throw new VmhostError('NOT_FOUND', `No virtual switch named '${switchName}'`, { switch: switchName });
    await this.change((b) => (join ? addSwitch(b, pools, sw.id) : removeSwitch(b, pools, sw.id)));
    return pools.flatMap((n) => this.list(n, ['Ethernet']));
  }

  /** Add-VMStoragePath / Remove-VMStoragePath: folders of the named VHD, ISO or VFD pools. */
  async changePaths(name: string, types: readonly PoolType[] | undefined, add: readonly string[], remove: readonly string[]): Promise<PoolView[]> {
    const drivePath = (m: PoolMember) => [...this.host.entries()].find((e) => e.config.id === m.vmId)?.config.hardDrives.find((d) => d.id === m.deviceId)?.path;
    // Without -ResourcePoolType: the storage pools of that name.
    await this.change((b) => poolsNamed(b, name, types ?? STORAGE_TYPES.filter((t) => b.pools.some((p) => p.type === t && p.name.toLowerCase() === name.toLowerCase()))).reduce((acc, p) => {
      const at = () => acc.pools.find((x) => x.type === p.type && x.name === p.name)!;
      if (add.length > 0) acc = addPaths(acc, at(), add);
      return remove.length > 0 ? removePaths(acc, at(), remove, drivePath) : acc;
    }, b));
    return this.list(name, types);
  }

  /** A VM's (Memory, Processor) or device's (VHD: drive id, Ethernet: adapter id) pool, by -ResourcePoolName; Primordial takes it out. */
  async setMember(vm: string, type: MeteredPoolType, deviceId: string | null, poolName: string): Promise<{ VMName: string; ResourcePoolType: PoolType; DeviceId: string | null; PoolName: string }> {
    const e = this.host.resolve(vm);
    let path: string | undefined;
    if (type === 'VHD') {
      path = e.config.hardDrives.find((d) => d.id === deviceId)?.path;
      if (path === undefined) throw new VmhostError('NOT_FOUND', `VM '${e.config.name}' has no hard drive ${deviceId}`, { vm: e.config.name, param: 'DeviceId' });
    } else if (type === 'Ethernet') {
      if (!e.config.networkAdapters.some((a) => a.id === deviceId)) throw new VmhostError('NOT_FOUND', `VM '${e.config.name}' has no network adapter ${deviceId}`, { vm: e.config.name, param: 'DeviceId' });
    } else if (deviceId !== null) {
      throw new VmhostError('INVALID_ARGUMENT', `${type} pools take whole VMs, not devices`, { vm: e.config.name, param: 'DeviceId' });
    }
    await this.change((b) => setMember(b, { type, vmId: e.config.id, deviceId }, poolName, path));
    return { VMName: e.config.name, ResourcePoolType: type, DeviceId: deviceId, PoolName: poolOf(this.book, type, e.config.id, deviceId) };
  }

  /** Get-VMHardDiskDrive's and Get-VMNetworkAdapter's PoolName. */
  poolName(type: MeteredPoolType, vmId: string, deviceId: string | null): string {
    return poolOf(this.book, type, vmId, deviceId);
  }

  private meteredNamed(name: string, types: readonly PoolType[] | undefined): ResourcePool[] {
    const pools = poolsNamed(this.book, name, types ?? undefined).filter((p) => types !== undefined || isMeteredType(p.type));
    for (const p of pools) if (!isMeteredType(p.type)) throw new VmhostError('INVALID_ARGUMENT', `${p.type} pools are not metered (only ${METERED_POOL_TYPES.join(', ')})`, { pool: name, param: 'ResourcePoolType' });
    if (pools.length === 0) throw new VmhostError('RESOURCE_POOL_NOT_FOUND', `No metered resource pool named '${name}'`, { pool: name });
    return pools;
  }

  /** Enable-VMResourceMetering -ResourcePoolName: counting starts at the next sample (already on: unchanged). */
  async enableMetering(name: string, types?: readonly PoolType[]): Promise<void> {
    const pools = this.meteredNamed(name, types);
    await this.change((b) => pools.reduce((acc, p) => setMetering(acc, acc.pools.find((x) => x.type === p.type && x.name === p.name)!, true), b), (counts) => {
      for (const p of pools) if (!counts.has(poolKey(p))) counts.set(poolKey(p), newPoolMetering(new Date().toISOString()));
    });
  }

  /** Disable-VMResourceMetering -ResourcePoolName: what was counted is dropped. */
  async disableMetering(name: string, types?: readonly PoolType[]): Promise<void> {
    const pools = this.meteredNamed(name, types);
    await this.change((b) => pools.reduce((acc, p) => setMetering(acc, acc.pools.find((x) => x.type === p.type && x.name === p.name)!, false), b), (counts) => {
      for (const p of pools) counts.delete(poolKey(p));
    });
    await this.saveCounts();
  }

  /** Reset-VMResourceMetering -ResourcePoolName: from zero, the members' sources' positions kept, members that left forgotten. */
  async resetMetering(name: string, types?: readonly PoolType[]): Promise<void> {
    const now = new Date().toISOString();
    for (const p of this.meteredNamed(name, types)) {
      const c = this.mustBeMetered(p);
      const current = new Set(membersUnder(this.book, p).map(memberKey));
      const members = Object.fromEntries(Object.entries(c.members).filter(([k]) => current.has(k)).map(([k, m]) => [k, resetMeteringState(m, now)]));
      this.counts.set(poolKey(p), { ...newPoolMetering(now), members });
    }
    await this.saveCounts();
  }

  private mustBeMetered(p: ResourcePool): PoolMeteringState {
    const c = this.counts.get(poolKey(p));
    if (!c) {
      throw new VmhostError('METERING_NOT_ENABLED', `Unable to retrieve resource metering data for ${p.type} resource pool '${p.name}': resource metering is not enabled (Enable-VMResourceMetering -ResourcePoolName)`, { pool: p.name, type: p.type });
    }
    return c;
  }

  /** Measure-VMResourcePool: one report over the named pools' types (all its metered types when none is given). */
  measure(name: string, types?: readonly PoolType[]): MeteringReport & { Name: string; ResourcePoolName: string; ResourcePoolType: PoolType[]; ComputerName: string; MeteringStartTime: string } {
    const pools = this.meteredNamed(name, types);
    return { Name: pools[0]!.name, ResourcePoolName: pools[0]!.name, ResourcePoolType: pools.map((p) => p.type), ComputerName: this.host.computerName, ...poolReport(pools.map((p) => this.mustBeMetered(p)), this.host.hostMhz()) };
  }

  /** VmMetering's sampler, after each sample: each metered pool counts its members' part of it. */
  async sample(seconds: number, sources: ReadonlyMap<string, VmSources>): Promise<void> {
    for (const p of this.book.pools) {
      const c = this.counts.get(poolKey(p));
      if (!c || !isMeteredType(p.type)) continue;
      const parts: MemberSample[] = [];
      for (const m of membersUnder(this.book, p)) {
        const src = sources.get(m.vmId);
        const sample = src && memberSample(m, seconds, src);
        if (sample) parts.push({ key: memberKey(m), sample });
      }
      this.counts.set(poolKey(p), applyPoolSample(c, seconds, parts));
    }
    if (this.counts.size > 0 && Date.now() - this.savedAt >= this.host.saveIntervalMs()) await this.saveCounts().catch(() => undefined);
  }

  private saveCounts(): Promise<void> {
    return this.lock.run(async () => {
      await writeFileAtomic(this.countsFile, JSON.stringify(Object.fromEntries(this.counts)) + '\n');
      this.savedAt = Date.now();
    });
  }
}

/** A member's part of its VM's sources (undefined: the device is gone). */
function memberSample(m: PoolMember, seconds: number, src: VmSources): Sample | undefined {
  const base: Sample = { seconds, running: false, memoryBytes: 0, diskAllocatedBytes: 0, readings: [] };
  switch (m.type) {
    case 'Memory': return { ...base, running: src.running, memoryBytes: src.memoryBytes };
    case 'Processor': return { ...base, readings: src.cpu };
    case 'VHD': {
      const d = src.drives.find((x) => x.id === m.deviceId);
      return d && { ...base, diskAllocatedBytes: d.allocatedBytes, readings: d.readings };
    }
    case 'Ethernet': {
      const a = src.adapters.find((x) => x.id === m.deviceId);
      return a && { ...base, readings: a.readings };
    }
  }
}
