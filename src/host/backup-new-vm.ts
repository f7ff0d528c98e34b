// Restore-VMBackup -NewVMName: the config of a new VM made from a backup point (pure). The
// point's config (carried in its first drive's stream header) is upgraded to this host's
// version, given the new name and a new id (drive, DVD and adapter ids derived from it, as
// Import-VM -Copy -GenerateNewId does), its hard drives pointed at the restored files, its
// dynamic MACs renewed from this host's pool; it has no checkpoints and registers Off.
import { randomUUID } from 'node:crypto';
import { upgradeConfig, type RawConfig } from './config-version.ts';
import { withNewIds } from './import-plan.ts';
import type { VmConfig } from './vm-config.ts';

export interface NewVmFromBackup {
  /** The point's config, as stored. */
  source: unknown;
  name: string;
  /** Restored file per source drive id. */
  disks: ReadonlyMap<string, string>;
  /** The new VM's checkpoint folder (its folder's snapshots/). */
  snapshotDir: (id: string) => string;
  /** A dynamic MAC from this host's pool, not in `taken`. */
  newMac: (taken: Set<string>) => string;
}

export function newVmConfigFromBackup(o: NewVmFromBackup, what: string): VmConfig {
  const id = randomUUID();
  const old = upgradeConfig(o.source as RawConfig, { snapshotDir: o.snapshotDir(id) }, what).config;
  const withFiles: VmConfig = { ...old, hardDrives: old.hardDrives.map((d) => ({ ...d, path: o.disks.get(d.id) ?? d.path })) };
  const taken = new Set<string>();
  const renumbered = withNewIds(withFiles, id);
  return {
    ...renumbered,
    name: o.name,
    parentSnapshotId: null,
    snapshotFileLocation: o.snapshotDir(id),
    createdAt: new Date().toISOString(),
    networkAdapters: renumbered.networkAdapters.map((a) => {
      if (!a.dynamicMac) return a;
      const mac = o.newMac(taken);
      taken.add(mac);
      return { ...a, mac, renewMacAtColdStart: undefined };
    }),
  };
}
