// The keys of Cluster Shared Volumes: a prefix of their own beside keys.ts's (like ops-keys.ts),
// so the nodes' role loop neither reads them nor wakes for them.
//
//   /vmhost/csv/volumes/<name>   CsvVolumeRecord    Add-ClusterSharedVolume: the volume's directory, as every node reaches it
//   /vmhost/csv/coord/<name>     CsvCoordRecord     leased: the volume's coordinator, bound to *that node's* lease (the
//                                                   leader writes it with the lease of the node's alive key), so the
//                                                   coordination ends with the coordinator, as ownership ends with an owner
import type { EtcdKv } from './etcd-client.ts';
import { PREFIX } from './keys.ts';

export const CSV_PREFIX = '/vmhost/csv/';
export const csvVolumeKey = (name: string): string => `${CSV_PREFIX}volumes/${name}`;
export const csvCoordKey = (name: string): string => `${CSV_PREFIX}coord/${name}`;
/** The nodes' alive keys (keys.ts), read for the lease each is bound to. */
export const ALIVE_PREFIX = `${PREFIX}alive/`;

/** `Id`: also in the marker file at the volume's root (csv-volume.ts), which tells each node it reaches the same directory. */
export interface CsvVolumeRecord { Name: string; Id: string; Path: string; CreatedAt: string }
export interface CsvCoordRecord { Node: string; By: string }

export interface CsvSnapshot {
  volumes: Map<string, CsvVolumeRecord>;
  coords: Map<string, CsvCoordRecord & { modRevision: number }>;
}

export function parseCsvSnapshot(kvs: EtcdKv[]): CsvSnapshot {
  const s: CsvSnapshot = { volumes: new Map(), coords: new Map() };
  for (const kv of kvs) {
    const rest = kv.key.slice(CSV_PREFIX.length);
    const slash = rest.indexOf('/');
    if (slash < 0) continue;
    const kind = rest.slice(0, slash), name = rest.slice(slash + 1);
    let v: unknown;
    try { v = JSON.parse(kv.value); } catch { continue; } // not ours
    if (kind === 'volumes') s.volumes.set(name, v as CsvVolumeRecord);
    else if (kind === 'coord') s.coords.set(name, { ...(v as CsvCoordRecord), modRevision: kv.modRevision });
  }
  return s;
}
