// Import-VM, the writing half: a plan without incompatibilities (import-plan.ts) carried out.
// -Copy copies every chain file (holes kept) to its destination and re-points each copy at its
// parent's copy; register-in-place uses the export's files where they are, re-pointing only a
// child whose parent was found in -VhdSourcePath. Checkpoint records are written with absolute
// paths (in place, or into the new snapshot folder with their memory), then the host registers
// the VM. A failed -Copy removes what it created; the export itself is never changed by -Copy.
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { copyDiskFile, setDiskParent } from '../storage/index.ts';
import { writeFileAtomic } from './atomic-file.ts';
import { mapDrivePaths } from './export-layout.ts';
import type { ImportPlan } from './import-plan.ts';
import type { JobHandle } from './jobs.ts';
import type { VmConfig } from './vm-config.ts';

/** The host's half: register `vm` (its firmware and saved-state files are `state` in `stateDir`), under its names lock. */
export type RegisterImported<T> = (vm: VmConfig, stateDir: string, state: readonly string[], saved: boolean) => Promise<T>;

export async function executeImport<T>(plan: ImportPlan, h: JobHandle, register: RegisterImported<T>): Promise<T> {
  const copy = plan.report.Copy;
  const created: string[] = [];
  const byFile = new Map([...plan.chains.values()].map((c) => [c.files[0]!, c]));
  const leafOf = (p: string) => plan.chains.get(p)?.files[0] ?? p;
  const place = (p: string) => (copy ? plan.copies.get(leafOf(p))! : leafOf(p));
  try {
    if (copy) {
      let i = 0;
      for (const [src, dst] of plan.copies) {
        h.progress(5 + (i++ / plan.copies.size) * 80, `Copying ${src}`);
        await mkdir(dirname(dst), { recursive: true });
        await copyDiskFile(src, dst);
        created.push(dst);
      }
    }
    h.progress(86, 'Linking differencing disks to their parents');
    const linked = new Set<string>();
    for (const c of byFile.values()) {
      for (const [j, f] of c.files.entries()) {
        const parent = c.files[j + 1];
        if (parent === undefined || linked.has(f)) continue;
        linked.add(f);
        if (copy) await setDiskParent(plan.copies.get(f)!, plan.copies.get(parent)!, false);
        else if (c.relink.get(f) === parent) await setDiskParent(f, parent, false);
      }
    }
    const vm: VmConfig = { ...mapDrivePaths(plan.vm, place), snapshotFileLocation: plan.snapshotDir };
    await mkdir(plan.snapshotDir, { recursive: true });
    for (const c of plan.checkpoints) {
      if (copy && c.memory !== null) {
        const to = join(plan.snapshotDir, c.record.memory!);
        await copyFile(c.memory, to);
        created.push(to);
      }
      const file = join(plan.snapshotDir, `${c.record.id}.json`);
      await writeFileAtomic(file, JSON.stringify({ ...c.record, config: { ...mapDrivePaths(c.record.config, place), snapshotFileLocation: plan.snapshotDir } }, null, 2) + '\n');
      if (copy) created.push(file);
    }
    h.progress(95, 'Registering the virtual machine');
    return await register(vm, plan.layout.stateDir, plan.state, plan.report.SavedState === 'Whole');
  } catch (e) {
    for (const f of created) await rm(f, { force: true });
    throw e;
  }
}
