// The marker file at a Cluster Shared Volume's root (written by Add-ClusterSharedVolume,
// csv-volume.ts). Filesystem only — the CLI reads it too, to tell from a path alone that a new
// file is on a volume and must be created by the volume's coordinator.
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

export const MARKER_FILE = '.vmhost-csv.json';

export interface VolumeMarker { Name: string; Id: string; Cluster: string }

export async function readMarker(dir: string): Promise<VolumeMarker | undefined> {
  const text = await readFile(join(dir, MARKER_FILE), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try { return JSON.parse(text) as VolumeMarker; } catch { return undefined; }
}

/** The volume directory holding `path` (its marker, found walking up from its folder), if any. */
export async function findVolumeMarker(path: string): Promise<{ dir: string; marker: VolumeMarker } | undefined> {
  for (let dir = dirname(resolve(path)); ; dir = dirname(dir)) {
    const marker = await readMarker(dir);
    if (marker) return { dir, marker };
    if (dirname(dir) === dir) return undefined;
  }
}
