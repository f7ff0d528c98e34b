// Compare-VM / Import-VM, the reading half: an export folder (export-layout.ts) read, upgraded
// to this host's config version, turned into the VM as it would be registered under the chosen
// mode, and the facts about this host gathered for the pure judge (import-report.ts). The
// report is the API's object: Import-VM -CompatibilityReport takes it back, edited, and this
// module rebuilds the same plan from it (the admin's VM, the export's checkpoints remapped alike).
import { createHash, randomUUID } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { VmhostError, isVmhostError } from '../common/index.ts';
import { describeDiskFile } from '../storage/index.ts';
import { readJson } from './atomic-file.ts';
import { CONFIG_VERSION, configVersionOf, upgradeConfig, type RawConfig } from './config-version.ts';
import { FIRMWARE_MANIFEST, SNAPSHOT_FOLDER, VHD_FOLDER, fromExportPath, layoutOfConfig, mapDrivePaths, type ExportLayout } from './export-layout.ts';
import { incompatibilities, versionIncompatibility, type DiskProblem, type ImportFacts, type Incompatibility } from './import-report.ts';
import type { CheckpointRecord } from './vm-checkpoints.ts';
import type { NetworkAdapter, VmConfig } from './vm-config.ts';
import { chainOf, copyNames } from './vm-export.ts';
import { vmPaths } from './vm-paths.ts';

/** Import-VM's and Compare-VM's options (Hyper-V's names; -SwitchName and -VhdSourcePath are the CLI's fixes). */
export interface ImportOptions {
  Copy?: boolean;
  GenerateNewId?: boolean;
  VhdDestinationPath?: string;
  VirtualMachinePath?: string;
  SnapshotFilePath?: string;
  /** Where to look for disks (and parents) not found where the export says. */
  VhdSourcePath?: string;
  /** Adapters whose switch this host does not have connect to this one ('' = leave them disconnected). */
  SwitchName?: string;
}

/** Hyper-V's VMCompatibilityReport, plus the fields an admin edits to resolve what it lists. */
export interface VmCompatibilityReport {
  OperationType: 'ImportVirtualMachine';
  /** The exported config (`.../Virtual Machines/<id>.json`). */
  Path: string;
  Copy: boolean;
  GenerateNewId: boolean;
  VhdDestinationPath: string | null;
  VirtualMachinePath: string | null;
  SnapshotFilePath: string | null;
  VhdSourcePath: string | null;
  /** The VM as it would be registered (its disks where they are now); null when the config is unreadable here. Edit it to fix an incompatibility. */
  VM: VmConfig | null;
  /** Generation 2: 'New' accepts fresh firmware variables when the export has none. */
  FirmwareVars: 'Exported' | 'Missing' | 'New';
  /** 'None' imports the VM Off when its saved memory is lost. */
  SavedState: 'None' | 'Whole' | 'MemoryMissing';
  Incompatibilities: Incompatibility[];
}

/** The chain of one disk as found: its files leaf first, parents found in -VhdSourcePath (child → parent), or what is wrong. */
export interface ChainProbe {
  files: string[];
  relink: Map<string, string>;
  problem?: { problem: DiskProblem; path: string; detail: string };
}

/** What the import does, beyond the report: every file and where it goes. */
export interface ImportPlan {
  report: VmCompatibilityReport;
  layout: ExportLayout;
  vm: VmConfig;
  checkpoints: { record: CheckpointRecord; memory: string | null }[];
  /** Per disk file named by the VM or a checkpoint: its chain. */
  chains: Map<string, ChainProbe>;
  /** -Copy: every chain file → its copy. */
  copies: Map<string, string>;
  snapshotDir: string;
  /** Files of `Virtual Machines/<id>/` that go into the VM folder. */
  state: string[];
}

/** What the plan needs of this host. */
export interface ImportHostFacts {
  dataDir: string;
  host: ImportFacts['host'];
  vms: ImportFacts['vms'];
  switches: ImportFacts['switches'];
  /** A new dynamic MAC, none of `also`. */
  newMac(also: ReadonlySet<string>): string;
}

const exists = (p: string) => stat(p).then(() => true, () => false);

/** A stable new id for a device of a VM imported with a new id: the same for the VM and its checkpoints, from the report alone. */
export function derivedId(vmId: string, oldId: string): string {
  const h = createHash('sha256').update(`${vmId}/${oldId}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The config under VM id `vmId`, its drives' and adapters' ids derived from it (the boot order follows). */
export function withNewIds(c: VmConfig, vmId: string): VmConfig {
  const known = new Set([...c.hardDrives, ...c.dvdDrives, ...c.networkAdapters].map((x) => x.id));
  const m = (id: string) => (known.has(id) ? derivedId(vmId, id) : id);
  return {
    ...c, id: vmId, bootOrder: c.bootOrder.map(m),
    hardDrives: c.hardDrives.map((d) => ({ ...d, id: m(d.id) })), dvdDrives: c.dvdDrives.map((d) => ({ ...d, id: m(d.id) })),
    networkAdapters: c.networkAdapters.map((a) => ({ ...a, id: m(a.id) })),
  };
}

const PROBLEMS: [RegExp, DiskProblem][] = [
  [/^VHD_IN_USE$/, 'in-use'], [/PARENT_(NOT_FOUND|MISSING)$/, 'missing-parent'], [/PARENT_MISMATCH$/, 'parent-mismatch'],
];

function classify(e: unknown, path: string): ChainProbe['problem'] {
  const code = isVmhostError(e) ? e.code : '';
  const problem = PROBLEMS.find(([re]) => re.test(code))?.[1] ?? 'unreadable';
  return { problem, path, detail: e instanceof Error ? e.message : String(e) };
}

/** Walk a disk's chain file by file, looking in `sourceDir` for what is not where the locators say. */
export async function probeChain(leaf: string, sourceDir: string | null): Promise<ChainProbe> {
  const out: ChainProbe = { files: [], relink: new Map() };
  let cur = leaf;
  let child: string | undefined;
  for (;;) {
    if (!(await exists(cur))) {
      const alt = sourceDir === null ? undefined : join(sourceDir, basename(cur));
      if (alt === undefined || !(await exists(alt))) {
        return { ...out, problem: { problem: child === undefined ? 'missing' : 'missing-parent', path: cur, detail: child === undefined ? 'no such file' : `the parent of ${child}` } };
      }
      if (child !== undefined) out.relink.set(child, alt);
      cur = alt;
    }
    let parent: string | null;
    try {
      parent = (await describeDiskFile(cur)).ParentPath;
    } catch (e) {
      return { ...out, problem: classify(e, cur) };
    }
    out.files.push(cur);
    if (parent === null) break;
    child = cur;
    cur = resolve(parent);
    if (out.files.includes(cur)) return { ...out, problem: { problem: 'unreadable', path: cur, detail: 'the chain loops' } };
  }
  // Found where the locators say: open it whole, so a parent that is not the child's own shows.
  if (out.relink.size === 0) await chainOf(out.files[0]!).catch((e: unknown) => { out.problem = classify(e, out.files[0]!); });
  return out;
}

async function readRecords(layout: ExportLayout): Promise<CheckpointRecord[]> {
  const names = (await readdir(layout.snapshotDir).catch(() => [] as string[])).filter((n) => n.endsWith('.json'));
  const out: CheckpointRecord[] = [];
  for (const n of names) {
    const r = await readJson<CheckpointRecord>(join(layout.snapshotDir, n));
    // Names become file names on this host: a record naming a path elsewhere is refused, not followed.
    for (const f of [`${r.id}.json`, r.memory ?? 'x']) {
      if (basename(f) !== f || f.startsWith('.')) throw new VmhostError('INVALID_ARGUMENT', `checkpoint ${n} names the file '${f}', which is not a plain file name`, { path: join(layout.snapshotDir, n) });
    }
    out.push({ ...r, config: upgradeConfig(r.config as unknown as RawConfig, { snapshotDir: SNAPSHOT_FOLDER }, `checkpoint ${n}`).config });
  }
  return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

function checkOptions(o: ImportOptions): void {
  if (o.GenerateNewId && !o.Copy) throw new VmhostError('INVALID_ARGUMENT', 'GenerateNewId: only with -Copy (a VM registered in place keeps its id)', { param: 'GenerateNewId' });
  for (const p of ['VhdDestinationPath', 'VirtualMachinePath', 'SnapshotFilePath'] as const) {
    if (o[p] !== undefined && !o.Copy) throw new VmhostError('INVALID_ARGUMENT', `${p}: only with -Copy (a VM registered in place keeps its files where they are)`, { param: p });
  }
}

/**
 * The plan and report for importing `path` with `opts`; with `edited`, the admin's report
 * (its options and VM win; the checkpoints are re-read from the export and follow the VM).
 */
export async function planImport(path: string, opts: ImportOptions, facts: ImportHostFacts, edited?: VmCompatibilityReport): Promise<ImportPlan> {
  if (edited) {
    opts = {
      Copy: edited.Copy, GenerateNewId: edited.GenerateNewId, VhdDestinationPath: edited.VhdDestinationPath ?? undefined,
      VirtualMachinePath: edited.VirtualMachinePath ?? undefined, SnapshotFilePath: edited.SnapshotFilePath ?? undefined, VhdSourcePath: edited.VhdSourcePath ?? undefined,
    };
    path = edited.Path;
  }
  checkOptions(opts);
  const layout = layoutOfConfig(path);
  const raw = await readJson<RawConfig>(layout.config).catch((e: unknown) => {
    throw new VmhostError('NOT_FOUND', `Path: cannot read ${layout.config}: ${(e as Error).message}`, { param: 'Path', path: layout.config }, { cause: e });
  });
  const report: VmCompatibilityReport = {
    OperationType: 'ImportVirtualMachine', Path: layout.config, Copy: opts.Copy ?? false, GenerateNewId: opts.GenerateNewId ?? false,
    VhdDestinationPath: opts.VhdDestinationPath ?? null, VirtualMachinePath: opts.VirtualMachinePath ?? null, SnapshotFilePath: opts.SnapshotFilePath ?? null,
    VhdSourcePath: opts.VhdSourcePath ?? null, VM: null, FirmwareVars: 'Missing', SavedState: 'None', Incompatibilities: [],
  };
  const version = configVersionOf(raw);
  const empty = { report, layout, vm: raw as unknown as VmConfig, checkpoints: [], chains: new Map(), copies: new Map(), snapshotDir: layout.snapshotDir, state: [] };
  if (version > CONFIG_VERSION) {
    report.Incompatibilities.push(versionIncompatibility(layout.config, version, CONFIG_VERSION));
    return empty;
  }
  const exported = upgradeConfig(raw, { snapshotDir: SNAPSHOT_FOLDER }, layout.config).config;
  const abs = (c: VmConfig) => mapDrivePaths(c, (p) => fromExportPath(layout.root, p));
  const newId = edited?.VM?.id ?? (opts.GenerateNewId ? randomUUID() : exported.id);
  const renumber = (c: VmConfig) => (opts.GenerateNewId ? withNewIds(c, newId) : c);
  const stateNames = await readdir(layout.stateDir).catch(() => [] as string[]);
  const savedJson = stateNames.includes('saved-state.bin.json');
  const saved = !savedJson ? 'None' : stateNames.includes('saved-state.bin') ? 'Whole' : 'MemoryMissing';
  report.SavedState = edited?.SavedState === 'None' ? 'None' : saved;
  let vm = edited?.VM ?? renumber(abs(exported));
  if (!edited) vm = fixAdapters(vm, opts, facts, report.SavedState === 'Whole');
  const adapters = new Map(vm.networkAdapters.map((a) => [a.id, a]));
  const checkpoints = (await readRecords(layout)).map((r) => {
    const config = renumber(abs(r.config));
    // Without memory a checkpoint's adapters take the VM's addresses (a restore must not bring back the old MAC);
    // with memory they keep the address that memory holds, renewed at the cold start after a restore.
    const own = (a: NetworkAdapter) => ({ ...a, renewMacAtColdStart: (a.renewMacAtColdStart ?? false) || (opts.GenerateNewId === true && a.dynamicMac) || undefined });
    const vmMac = (a: NetworkAdapter) => {
      const v = adapters.get(a.id);
      return v ? { ...a, mac: v.mac, renewMacAtColdStart: v.renewMacAtColdStart } : a;
    };
    const record = { ...r, config: { ...config, networkAdapters: config.networkAdapters.map(r.memory === null ? vmMac : own) } };
    return { record, memory: r.memory === null ? null : join(layout.snapshotDir, r.memory) };
  });

  const chains = new Map<string, ChainProbe>();
  for (const d of [vm, ...checkpoints.map((c) => c.record.config)].flatMap((c) => c.hardDrives)) {
    if (!chains.has(d.path)) chains.set(d.path, await probeChain(d.path, opts.VhdSourcePath ?? null));
  }
  const copies = new Map<string, string>();
  const snapshotDir = opts.Copy
    ? (opts.SnapshotFilePath ?? (opts.VirtualMachinePath ? join(opts.VirtualMachinePath, SNAPSHOT_FOLDER) : join(vmPaths(facts.dataDir, vm.id).dir, 'snapshots')))
    : layout.snapshotDir;
  const collisions: string[] = [];
  if (opts.Copy) {
    const vhdDir = opts.VhdDestinationPath ?? join(opts.VirtualMachinePath ?? facts.dataDir, VHD_FOLDER);
    const files = [...new Set([...chains.values()].flatMap((c) => [...c.files].reverse()))];
    for (const [f, name] of copyNames(files)) copies.set(f, join(vhdDir, name));
    const targets = [...copies.values(), ...checkpoints.flatMap((c) => [join(snapshotDir, `${c.record.id}.json`), ...(c.record.memory ? [join(snapshotDir, c.record.memory)] : [])])];
    for (const t of targets) if (await exists(t)) collisions.push(t);
  }
  const manifest = await readJson<{ files: string[] }>(join(layout.stateDir, FIRMWARE_MANIFEST)).catch(() => undefined);
  const firmware = manifest !== undefined && manifest.files.every((f) => stateNames.includes(f)) ? 'Exported' : 'Missing';
  report.FirmwareVars = edited?.FirmwareVars === 'New' ? 'New' : firmware;
  const missing = new Set<string>();
  const named = [...vm.dvdDrives.map((d) => d.path), vm.floppyPath, ...(vm.boot.kind === 'Kernel' ? [vm.boot.kernel, vm.boot.initrd] : [])];
  for (const p of named) if (p !== null && p !== undefined && !(await exists(p))) missing.add(p);
  // The VM names its disks where they were found (a -VhdSourcePath hit included).
  vm = { ...vm, hardDrives: vm.hardDrives.map((d) => ({ ...d, path: chains.get(d.path)?.files[0] ?? d.path })) };
  const byLeaf = (c: VmConfig) => c.hardDrives.flatMap((d) => {
    const p = chains.get(d.path)?.problem;
    return p ? [{ driveId: d.id, ...p }] : [];
  });
  const lost: { id: string; name: string }[] = [];
  for (const c of checkpoints) if (c.memory !== null && !(await exists(c.memory))) lost.push({ id: c.record.id, name: c.record.name });
  report.VM = vm;
  report.Incompatibilities = incompatibilities({
    vm, host: facts.host, vms: facts.vms, switches: facts.switches, missing, collisions,
    // One item per file at fault, as the VM's own chain sees it first (a checkpoint's base is the VM's parent).
    disks: [vm, ...checkpoints.map((c) => c.record.config)].flatMap(byLeaf).filter((x, i, all) => all.findIndex((y) => y.path === x.path) === i),
    firmwareVars: report.FirmwareVars, savedState: report.SavedState, checkpointsWithoutMemory: lost,
  });
  const state = stateNames.filter((n) => n !== FIRMWARE_MANIFEST && (report.SavedState === 'Whole' || !n.startsWith('saved-state.bin')) && (report.FirmwareVars === 'Exported' || !n.startsWith('OVMF_VARS')));
  return { report, layout, vm, checkpoints, chains, copies, snapshotDir, state };
}

/**
 * -GenerateNewId gives dynamic MACs new addresses from this host's pool — except when the VM
 * comes with its saved state (`keepSaved`): the guest's NIC state in that memory holds the old
 * address, so it is kept until the VM's next cold start (renewMacAtColdStart), as Hyper-V keeps
 * a dynamic MAC until then. -SwitchName connects adapters whose switch this host lacks.
 */
function fixAdapters(vm: VmConfig, opts: ImportOptions, facts: ImportHostFacts, keepSaved: boolean): VmConfig {
  const taken = new Set<string>();
  return {
    ...vm,
    networkAdapters: vm.networkAdapters.map((a) => {
      let next = a;
      if (opts.GenerateNewId && a.dynamicMac && keepSaved) next = { ...next, renewMacAtColdStart: true };
      else if (opts.GenerateNewId && a.dynamicMac) {
        next = { ...next, mac: facts.newMac(taken), renewMacAtColdStart: undefined };
        taken.add(next.mac);
      }
      const known = a.switchName === null || facts.switches.some((s) => s.name.toLowerCase() === a.switchName!.toLowerCase());
      if (!known && opts.SwitchName !== undefined) next = { ...next, switchName: opts.SwitchName === '' ? null : opts.SwitchName };
      return next;
    }),
  };
}
