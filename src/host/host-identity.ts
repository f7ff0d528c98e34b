// This host's identity and its MAC pool, kept in the data dir: `host-id` (a UUID made at the
// first start; the default MAC pool derives from it, so two data dirs on one machine — two
// hosts — get different pools) and `mac-pool.json` (the pool Set-VMHost set; absent while the
// default applies). Changed only through `setMacPool`, which validates before it writes.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readJson, writeFileAtomic } from './atomic-file.ts';
import { checkMacPool, defaultMacPool, parseMacText, type MacPool } from './mac-pool.ts';

export interface MacPoolChange { MacAddressMinimum?: string; MacAddressMaximum?: string }

export class HostIdentity {
  private constructor(readonly hostId: string, private pool: MacPool, private readonly dataDir: string) {}

  static async load(dataDir: string): Promise<HostIdentity> {
    const idFile = join(dataDir, 'host-id');
    let hostId = (await readFile(idFile, 'utf8').catch(() => '')).trim();
    if (hostId === '') {
      hostId = randomUUID();
      await writeFileAtomic(idFile, hostId + '\n');
    }
    const saved = await readJson<MacPool>(join(dataDir, 'mac-pool.json')).catch(() => undefined);
    let pool = defaultMacPool(hostId);
    if (saved) {
      // A hand-edited file is held to the same rules as Set-VMHost; a bad one falls back to the default.
      try {
        const p = { minimum: parseMacText(saved.minimum, 'minimum'), maximum: parseMacText(saved.maximum, 'maximum') };
        checkMacPool(p);
        pool = p;
      } catch { /* the default pool stands */ }
    }
    return new HostIdentity(hostId, pool, dataDir);
  }

  get macPool(): MacPool {
    return this.pool;
  }

  /** Set-VMHost -MacAddressMinimum/-MacAddressMaximum: either end or both; addresses already given out stay. */
  async setMacPool(change: MacPoolChange): Promise<MacPool> {
    const next = {
      minimum: change.MacAddressMinimum === undefined ? this.pool.minimum : parseMacText(change.MacAddressMinimum, 'MacAddressMinimum'),
      maximum: change.MacAddressMaximum === undefined ? this.pool.maximum : parseMacText(change.MacAddressMaximum, 'MacAddressMaximum'),
    };
    checkMacPool(next);
    await writeFileAtomic(join(this.dataDir, 'mac-pool.json'), JSON.stringify(next, null, 2) + '\n');
    this.pool = next;
    return next;
  }
}
