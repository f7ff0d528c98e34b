// A VM config's format version and the way from each older version to the current one. Each
// step is a small pure function from version n to n+1 (config-version.test.ts has one test per
// step); `upgradeConfig` runs the steps a config needs and refuses a version newer than this
// host knows with CONFIG_VERSION_UNSUPPORTED naming both. The daemon upgrades a vm.json it reads
// (and writes it back), Import-VM an exported config: this is what moving a VM between hosts of
// different versions stands on.
import { VmhostError } from '../common/index.ts';
import { DEFAULT_STARTUP_ORDER } from './boot-order.ts';
import { defaultDynamicMemory, defaultIntegrationServices, type VmConfig } from './vm-config.ts';

export const CONFIG_VERSION = 3;

/** What a step may need to know beyond the config: where its checkpoints live when it does not say (the VM folder's `snapshots`, or an export's `Snapshots`). */
export interface UpgradeContext { snapshotDir: string }

/** A config as read: any version, fields possibly missing. */
export type RawConfig = Record<string, unknown> & { configVersion?: unknown };

interface UpgradeStep {
  from: number;
  /** What the step changes, said in the upgrade's event. */
  why: string;
  up(c: RawConfig, ctx: UpgradeContext): RawConfig;
}

/**
 * Version 1 configs were written while settings were being added; a reader filled in what
 * was missing. Version 2 has every field explicit, and the checkpoint folder (Hyper-V's
 * SnapshotFileLocation), implied by the VM folder until now, is named: Import-VM -SnapshotFilePath
 * and a registered-in-place import put it elsewhere.
 */
function v1ToV2(c: RawConfig, ctx: UpgradeContext): RawConfig {
  const v1 = c as Partial<VmConfig>;
  const hardDrives = v1.hardDrives ?? [];
  return {
    ...c,
    hardDrives, dvdDrives: v1.dvdDrives ?? [], networkAdapters: v1.networkAdapters ?? [],
    bios: v1.bios ?? { startupOrder: [...DEFAULT_STARTUP_ORDER], numLockEnabled: false }, bootOrder: v1.bootOrder ?? [],
    // Before the setting, controllers existed as drives used them.
    scsiControllers: v1.scsiControllers ?? Math.max(1, ...hardDrives.filter((d) => d.controllerType === 'SCSI').map((d) => d.controllerNumber + 1)),
    floppyPath: v1.floppyPath ?? null, com2Path: v1.com2Path ?? null, parentSnapshotId: v1.parentSnapshotId ?? null,
    // A service added after the config was written gets its default, not "undefined = off".
    integrationServices: { ...defaultIntegrationServices(), ...v1.integrationServices },
    snapshotFileLocation: ctx.snapshotDir,
    configVersion: 2,
  };
}

/** Version 3 adds dynamic memory (static, with Hyper-V's defaults) and the smart paging folder (the VM's). */
function v2ToV3(c: RawConfig): RawConfig {
  return { ...c, dynamicMemory: defaultDynamicMemory(Number(c.memoryStartupBytes)), smartPagingFilePath: null, configVersion: 3 };
}

/** In order: STEPS[i] goes from version i+1 to i+2. */
export const UPGRADE_STEPS: readonly UpgradeStep[] = [
  { from: 1, why: 'every setting explicit; the checkpoint folder named (snapshotFileLocation)', up: v1ToV2 },
  { from: 2, why: 'dynamic memory settings (static by default) and the smart paging folder', up: v2ToV3 },
];

/** The version a config says it is (a config from before versions existed is 1). */
export function configVersionOf(c: RawConfig): number {
  const v = c.configVersion ?? 1;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new VmhostError('INVALID_ARGUMENT', `configVersion ${JSON.stringify(v)} is not a version number`, { configVersion: String(v) });
  }
  return v;
}

/** Refuse a config newer than this host understands: its fields may mean what this host cannot do. */
export function assertKnownVersion(version: number, what: string): void {
  if (version > CONFIG_VERSION) {
    throw new VmhostError('CONFIG_VERSION_UNSUPPORTED',
      `${what} has configuration version ${version}; this host reads versions up to ${CONFIG_VERSION}: upgrade vmhost on this host first`,
      { configVersion: version, supported: CONFIG_VERSION, what });
  }
}

/** The config at the current version, and the version it was (equal when nothing changed). `what` names it in errors. */
export function upgradeConfig(c: RawConfig, ctx: UpgradeContext, what: string): { config: VmConfig; from: number } {
  const from = configVersionOf(c);
  assertKnownVersion(from, what);
  let out = c;
  for (const step of UPGRADE_STEPS.slice(from - 1)) out = step.up(out, ctx);
  return { config: out as unknown as VmConfig, from };
}
