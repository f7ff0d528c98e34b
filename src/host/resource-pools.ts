// Hyper-V's resource pools (New-/Get-/Set-/Rename-/Remove-VMResourcePool and the
// -ResourcePoolName parameters of the device cmdlets), pure: the pools, their parents, the
// storage pools' paths and which VM or device belongs to which pool, with every rule a cmdlet
// refuses by. vm-resource-pools.ts keeps it in DIR/resource-pools.json and meters the pools.
//
// Each type has a root pool, Primordial, that holds whatever is in no other pool: it always
// exists, is never renamed or removed, and naming it as a device's pool takes the device out of
// its pool. Names are case-insensitive (as Hyper-V's); the same name may exist once per type,
// and New-VMResourcePool with several types makes one pool of each. A pool's parent is a pool
// of the same type (Primordial by default); the parents never form a loop.
//
// Members: Memory and Processor pools take VMs (Set-VMMemory/Set-VMProcessor -ResourcePoolName),
// VHD pools hard drives (Add-/Set-VMHardDiskDrive), Ethernet pools network adapters
// (Add-/Set-VMNetworkAdapter) and, apart from the members, switches (Add-VMSwitch): an adapter
// connected with -UseAutomaticConnection goes to a switch of its pool. A VHD pool with paths takes only drives whose file lies under one
// of them: that is what the paths are for. The other types (ISO, VFD, Fibre Channel) are kept
// and listed but have no members here: their devices do not take a pool yet.
import { isAbsolute, normalize, sep } from 'node:path';
import { VmhostError } from '../common/index.ts';
import { invalid } from './invalid-argument.ts';

export const POOL_TYPES = ['Memory', 'Processor', 'Ethernet', 'VHD', 'ISO', 'VFD', 'FibreChannelPort', 'FibreChannelConnection'] as const;
export type PoolType = (typeof POOL_TYPES)[number];
/** The types Measure-VMResourcePool and Enable-VMResourceMetering -ResourcePoolType take. */
export const METERED_POOL_TYPES = ['Memory', 'Processor', 'Ethernet', 'VHD'] as const satisfies readonly PoolType[];
export type MeteredPoolType = (typeof METERED_POOL_TYPES)[number];
export const STORAGE_TYPES: readonly PoolType[] = ['VHD', 'ISO', 'VFD'];
export const PRIMORDIAL = 'Primordial';
const MAX_NAME = 256;

export interface ResourcePool {
  name: string;
  type: PoolType;
  parent: string;
  /** Folders of a VHD, ISO or VFD pool. */
  paths: string[];
  meteringEnabled: boolean;
}

/** A VM (Memory, Processor: `deviceId` null) or one of its devices (VHD: a hard drive's id, Ethernet: an adapter's id) in a pool. */
export interface PoolMember {
  type: MeteredPoolType;
  pool: string;
  vmId: string;
  deviceId: string | null;
}

/** A virtual switch in an Ethernet pool (Add-VMSwitch -ResourcePoolName): where its adapters connect with -UseAutomaticConnection. */
export interface PoolSwitch { pool: string; switchId: string }

export interface PoolBook {
  version: 1;
  pools: ResourcePool[];
  members: PoolMember[];
  switches: PoolSwitch[];
}

export function emptyBook(): PoolBook {
  return { version: 1, pools: [], members: [], switches: [] };
}

const same = (a: string, b: string) => a.localeCompare(b, undefined, { sensitivity: 'accent' }) === 0;

export function isMeteredType(t: PoolType): t is MeteredPoolType {
  return (METERED_POOL_TYPES as readonly PoolType[]).includes(t);
}

function notFound(name: string, type?: PoolType): VmhostError {
  return new VmhostError('RESOURCE_POOL_NOT_FOUND', `No resource pool named '${name}'${type ? ` of type ${type}` : ''}`, { pool: name, type: type ?? '' });
}

/** The pool itself, Primordial included (a synthetic one: it is not stored). */
export function findPool(book: PoolBook, name: string, type: PoolType): ResourcePool | undefined {
  if (same(name, PRIMORDIAL)) return { name: PRIMORDIAL, type, parent: '', paths: [], meteringEnabled: false };
  return book.pools.find((p) => p.type === type && same(p.name, name));
}

/** Get-VMResourcePool: by name and types; the Primordial pools are listed too, as Hyper-V lists them (the CLI matches wildcards). */
export function listPools(book: PoolBook, name?: string, types: readonly PoolType[] = POOL_TYPES): ResourcePool[] {
  const all = [...types.map((type) => findPool(book, PRIMORDIAL, type)!), ...book.pools.filter((p) => types.includes(p.type))];
  return all.filter((p) => name === undefined || same(p.name, name));
}

/** The pools a name-and-types command acts on: the named pool of each type given (of every type it exists in when none is given). */
export function poolsNamed(book: PoolBook, name: string, types?: readonly PoolType[]): ResourcePool[] {
  const found = book.pools.filter((p) => same(p.name, name) && (types === undefined || types.includes(p.type)));
  for (const t of types ?? []) if (!found.some((p) => p.type === t)) throw notFound(name, t);
  if (found.length === 0) throw same(name, PRIMORDIAL) ? invalid('Name', 'the Primordial pools are built in: they cannot be changed') : notFound(name);
  return found;
}

function checkName(name: string, param: string): string {
  const n = name.trim();
  if (n === '' || n.length > MAX_NAME || /[\\/*?"<>|]/.test(n) || [...n].some((c) => c.charCodeAt(0) < 0x20)) throw invalid(param, `'${name}' is not a pool name (1–${MAX_NAME} characters, none of \\ / * ? " < > |)`);
  if (same(n, PRIMORDIAL)) throw invalid(param, 'Primordial is the built-in root pool of each type');
  return n;
}

/** -Paths go to the storage types among those given (New-VMResourcePool T VHD,Ethernet -Paths …: the VHD pool's). */
function checkPaths(types: readonly PoolType[], paths: readonly string[]): string[] {
  if (paths.length > 0 && !types.some((t) => STORAGE_TYPES.includes(t))) throw invalid('Paths', `only VHD, ISO and VFD pools have paths, not ${types.join(', ')}`);
  return paths.map((p) => {
    if (!isAbsolute(p)) throw invalid('Paths', `'${p}' is not an absolute path`);
    return normalize(p).replace(/(.)\/+$/, '$1');
  });
}

/** The parent chain of `name` (itself first), for the loop check. */
function ancestry(book: PoolBook, name: string, type: PoolType): string[] {
  const out: string[] = [];
  let p = findPool(book, name, type);
  while (p && !same(p.name, PRIMORDIAL) && !out.some((x) => same(x, p!.name))) {
    out.push(p.name);
    p = findPool(book, p.parent, type);
  }
  return out;
}

function checkParent(book: PoolBook, name: string, type: PoolType, parent: string): string {
  const pp = findPool(book, parent, type);
  if (!pp) throw invalid('ParentName', `no ${type} pool named '${parent}' to be the parent`);
  if (ancestry(book, pp.name, type).some((x) => same(x, name))) throw invalid('ParentName', `'${pp.name}' is '${name}' or one of its children: pools cannot form a loop`);
  return pp.name;
}

export interface NewPool { name: string; types: readonly PoolType[]; parents?: readonly string[]; paths?: readonly string[] }

/** New-VMResourcePool: one pool per type; -ParentName gives one parent per type, or one for all. */
export function createPools(book: PoolBook, p: NewPool): PoolBook {
  const name = checkName(p.name, 'Name');
  if (p.types.length === 0) throw invalid('ResourcePoolType', 'give at least one type');
  const parents = p.parents ?? [];
  if (parents.length > 1 && parents.length !== p.types.length) throw invalid('ParentName', 'give one parent, or one per type');
  const paths = checkPaths(p.types, p.paths ?? []);
  const pools = [...book.pools];
  p.types.forEach((type, i) => {
    if (pools.some((x) => x.type === type && same(x.name, name))) {
      throw new VmhostError('RESOURCE_POOL_EXISTS', `A ${type} resource pool named '${name}' already exists`, { pool: name, type });
    }
    const parent = checkParent({ ...book, pools }, name, type, parents[i] ?? parents[0] ?? PRIMORDIAL);
    pools.push({ name, type, parent, paths: STORAGE_TYPES.includes(type) ? paths : [], meteringEnabled: false });
  });
  return { ...book, pools };
}

function replacePool(book: PoolBook, old: ResourcePool, next: ResourcePool): PoolBook {
  return { ...book, pools: book.pools.map((x) => (x === old ? next : x)) };
}

/** Set-VMResourcePool -ParentName. */
export function setParent(book: PoolBook, pool: ResourcePool, parent: string): PoolBook {
  return replacePool(book, pool, { ...pool, parent: checkParent(book, pool.name, pool.type, parent) });
}

/** Rename-VMResourcePool: children and members follow the new name. */
export function renamePool(book: PoolBook, pool: ResourcePool, newName: string): PoolBook {
  const name = checkName(newName, 'NewName');
  if (book.pools.some((x) => x !== pool && x.type === pool.type && same(x.name, name))) {
    throw new VmhostError('RESOURCE_POOL_EXISTS', `A ${pool.type} resource pool named '${name}' already exists`, { pool: name, type: pool.type });
  }
  return {
    ...book,
    pools: book.pools.map((x) => (x === pool ? { ...x, name } : x.type === pool.type && same(x.parent, pool.name) ? { ...x, parent: name } : x)),
    members: book.members.map((m) => (m.type === pool.type && same(m.pool, pool.name) ? { ...m, pool: name } : m)),
    switches: book.switches.map((w) => (pool.type === 'Ethernet' && same(w.pool, pool.name) ? { ...w, pool: name } : w)),
  };
}

/** Remove-VMResourcePool: refused while the pool has child pools or members (a provider's bill would silently lose them). */
export function removePool(book: PoolBook, pool: ResourcePool): PoolBook {
  const children = book.pools.filter((x) => x.type === pool.type && same(x.parent, pool.name));
  const members = book.members.filter((m) => m.type === pool.type && same(m.pool, pool.name));
  const switches = pool.type === 'Ethernet' ? book.switches.filter((w) => same(w.pool, pool.name)) : [];
  if (children.length > 0 || members.length > 0 || switches.length > 0) {
    const what = [
      children.length > 0 ? `child pools ${children.map((c) => c.name).join(', ')}` : '', members.length > 0 ? `${members.length} member(s)` : '',
      switches.length > 0 ? `${switches.length} switch(es)` : '',
    ].filter(Boolean).join(' and ');
    throw new VmhostError('RESOURCE_POOL_IN_USE', `The ${pool.type} resource pool '${pool.name}' has ${what}: move them to another pool (or Primordial) first`, { pool: pool.name, type: pool.type });
  }
  return { ...book, pools: book.pools.filter((x) => x !== pool) };
}

/** Add-VMStoragePath: folders added to a VHD, ISO or VFD pool (one already there is kept once). */
export function addPaths(book: PoolBook, pool: ResourcePool, paths: readonly string[]): PoolBook {
  if (!STORAGE_TYPES.includes(pool.type)) throw invalid('ResourcePoolType', `only VHD, ISO and VFD pools have paths, not ${pool.type}`);
  const added = checkPaths([pool.type], paths);
  return replacePool(book, pool, { ...pool, paths: [...pool.paths, ...added.filter((p) => !pool.paths.includes(p))] });
}

/**
 * Remove-VMStoragePath: refused when a member drive of the pool would be left under none of its
 * paths (`pathOf`: a member drive's file), as Set-VMHardDiskDrive would refuse it there.
 */
export function removePaths(book: PoolBook, pool: ResourcePool, paths: readonly string[], pathOf: (m: PoolMember) => string | undefined): PoolBook {
  const gone = checkPaths([pool.type], paths);
  const missing = gone.filter((p) => !pool.paths.includes(p));
  if (missing.length > 0) throw invalid('Path', `${missing.join(', ')} is not a path of ${pool.type} pool '${pool.name}'`);
  const next = { ...pool, paths: pool.paths.filter((p) => !gone.includes(p)) };
  if (next.paths.length > 0 && pool.type === 'VHD') {
    const stranded = book.members.filter((m) => m.type === 'VHD' && same(m.pool, pool.name)).map(pathOf).filter((f): f is string => f !== undefined && !underAny(f, next.paths));
    if (stranded.length > 0) {
      throw new VmhostError('RESOURCE_POOL_IN_USE', `VHD pool '${pool.name}' has member drives under the paths removed (${stranded.join(', ')}): take them out of the pool first`, { pool: pool.name, type: pool.type });
    }
  }
  return replacePool(book, pool, next);
}

const underAny = (file: string, paths: readonly string[]) => paths.some((p) => normalize(file).startsWith(p.endsWith(sep) ? p : p + sep));

export function setMetering(book: PoolBook, pool: ResourcePool, enabled: boolean): PoolBook {
  return replacePool(book, pool, { ...pool, meteringEnabled: enabled });
}

const memberMatch = (m: PoolMember, type: PoolType, vmId: string, deviceId: string | null) => m.type === type && m.vmId === vmId && m.deviceId === deviceId;

/**
 * A VM's or device's pool set (-ResourcePoolName): Primordial takes it out of its pool. `path`:
 * the drive's file, checked against a VHD pool's paths.
 */
export function setMember(book: PoolBook, m: Omit<PoolMember, 'pool'>, poolName: string, path?: string): PoolBook {
  const rest = book.members.filter((x) => !memberMatch(x, m.type, m.vmId, m.deviceId));
  if (same(poolName, PRIMORDIAL)) return { ...book, members: rest };
  const pool = findPool(book, poolName, m.type);
  if (!pool) throw new VmhostError('RESOURCE_POOL_NOT_FOUND', `No ${m.type} resource pool named '${poolName}'`, { pool: poolName, type: m.type, param: 'ResourcePoolName' });
  if (pool.type === 'VHD' && pool.paths.length > 0 && path !== undefined && !underAny(path, pool.paths)) {
    throw invalid('ResourcePoolName', `'${path}' is not under the paths of VHD pool '${pool.name}' (${pool.paths.join(', ')})`);
  }
  return { ...book, members: [...rest, { ...m, pool: pool.name }] };
}

/** Add-VMSwitch -ResourcePoolName: the switch joins Ethernet pools (a switch may be in several). */
export function addSwitch(book: PoolBook, pools: readonly string[], switchId: string): PoolBook {
  const names = pools.map((n) => {
    const p = findPool(book, n, 'Ethernet');
    if (!p || same(p.name, PRIMORDIAL)) throw new VmhostError('RESOURCE_POOL_NOT_FOUND', `No Ethernet resource pool named '${n}'`, { pool: n, type: 'Ethernet', param: 'ResourcePoolName' });
    return p.name;
  });
  const rest = book.switches.filter((w) => !(w.switchId === switchId && names.some((n) => same(n, w.pool))));
  return { ...book, switches: [...rest, ...names.map((pool) => ({ pool, switchId }))] };
}

/** Remove-VMSwitch -ResourcePoolName: the switch leaves those pools (it is not deleted). */
export function removeSwitch(book: PoolBook, pools: readonly string[], switchId: string): PoolBook {
  return { ...book, switches: book.switches.filter((w) => !(w.switchId === switchId && pools.some((n) => same(n, w.pool)))) };
}

/** The switches of an Ethernet pool, in the order they joined. */
export function switchesOf(book: PoolBook, pool: string): string[] {
  return book.switches.filter((w) => same(w.pool, pool)).map((w) => w.switchId);
}

/** A VM's or device's pool (Primordial when it is in none). */
export function poolOf(book: PoolBook, type: MeteredPoolType, vmId: string, deviceId: string | null): string {
  return book.members.find((x) => memberMatch(x, type, vmId, deviceId))?.pool ?? PRIMORDIAL;
}

/** The pool and every pool under it. */
export function subtree(book: PoolBook, pool: ResourcePool): string[] {
  return book.pools.filter((x) => x.type === pool.type && ancestry(book, x.name, x.type).some((a) => same(a, pool.name))).map((x) => x.name);
}

/** Members counted by `pool`: its own and its child pools' (a parent pool's bill holds its children's). */
export function membersUnder(book: PoolBook, pool: ResourcePool): PoolMember[] {
  const names = subtree(book, pool);
  return book.members.filter((m) => m.type === pool.type && names.some((n) => same(n, m.pool)));
}

/** Members whose VM or device is gone (Remove-VM, Remove-VMHardDiskDrive …) and switches that are gone leave the book. */
export function pruneMembers(book: PoolBook, exists: (m: PoolMember) => boolean, switchExists: (id: string) => boolean): PoolBook {
  const members = book.members.filter(exists);
  const switches = book.switches.filter((w) => switchExists(w.switchId));
  return members.length === book.members.length && switches.length === book.switches.length ? book : { ...book, members, switches };
}
