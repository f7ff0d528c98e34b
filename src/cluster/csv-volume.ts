// A Cluster Shared Volume's directory as one node sees it. Add-ClusterSharedVolume writes a
// marker file at its root (the volume's Id, the cluster's Id); every node then checks that the
// directory exists, that it can create and delete a file there, and that it reads back the same
// marker — the same directory, not a local one of the same name. The same marker lets the CLI
// tell, from a path alone, that a file is on a volume (csv-marker.ts).
import { randomUUID } from 'node:crypto';
import { open, readdir, rm, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { VmhostError } from '../common/index.ts';
import { writeFileAtomic } from '../host/index.ts';
import { MARKER_FILE, readMarker, type VolumeMarker } from './csv-marker.ts';

export interface VolumeCheck { Node: string; Ok: boolean; Message: string }

/** The marker of a new volume; refused when the directory is missing or another volume's. */
export async function writeMarker(dir: string, marker: VolumeMarker): Promise<void> {
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new VmhostError('CLUSTER_CSV_INVALID', `${dir} is not a directory on this node`, { path: dir });
  const had = await readMarker(dir);
  if (had && (had.Cluster !== marker.Cluster || had.Name !== marker.Name)) {
    throw new VmhostError('CLUSTER_CSV_INVALID', `${dir} is already volume '${had.Name}' of cluster ${had.Cluster}`, { path: dir });
  }
  await writeFileAtomic(join(dir, MARKER_FILE), JSON.stringify(marker));
}

export async function removeMarker(dir: string): Promise<void> {
  await rm(join(dir, MARKER_FILE), { force: true });
}

/** One node's check of the volume's directory: there, writable, and holding the marker with `id`. */
export async function checkVolume(node: string, dir: string, id: string): Promise<VolumeCheck> {
  const fail = (m: string): VolumeCheck => ({ Node: node, Ok: false, Message: m });
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) return fail(`${dir} is not a directory here`);
  const probe = join(dir, `.vmhost-csv-probe-${node}-${randomUUID()}`);
  try {
    const f = await open(probe, 'wx', 0o600);
    await f.close();
    await rm(probe);
  } catch (e) {
    return fail(`cannot create a file in ${dir}: ${(e as Error).message}`);
  }
  const m = await readMarker(dir);
  if (m?.Id !== id) return fail(`${dir} here holds ${m ? `volume '${m.Name}' (${m.Id})` : 'no volume marker'}: not the directory the volume was added from`);
  return { Node: node, Ok: true, Message: `${dir} reached, writable, marker ${id}` };
}

const DISK_EXTENSIONS = new Set(['.vhdx', '.avhdx', '.vhd', '.avhd']);
const LIST_DEPTH = 3;

/** The disk files on the volume (Get-ClusterSharedVolume), down to its VMs' folders. */
export async function diskFiles(dir: string, depth = LIST_DEPTH): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, e.name);
    if (e.isDirectory() && depth > 1) out.push(...await diskFiles(p, depth - 1));
    else if (e.isFile() && DISK_EXTENSIONS.has(extname(e.name).toLowerCase())) out.push(p);
  }
  return out.sort();
}
