// How one node asks another about a Cluster Shared Volume: a node's check of the volume's
// directory (Add-ClusterSharedVolume asks every Up node) and a metadata operation sent to the
// volume's coordinator. No node holds another's API token: a request is signed with the cluster's
// MoveKey (cluster-move.ts: whoever reads the cluster's keys is a node already) — the header
// `x-vmhost-csv-auth: <ms>.<nonce>.<HMAC-SHA256(MoveKey, "csv" \n to \n ms \n nonce \n body)>` —
// and accepted by node `to` only within a minute of `ms` and once per nonce. Like the cluster's
// live moves, the call is plain HTTP between daemons that listen on loopback.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { VmhostError, isErrorCode } from '../common/index.ts';
import type { VolumeOp } from '../storage/index.ts';
import type { VolumeCheck } from './csv-volume.ts';

export const CSV_AUTH_HEADER = 'x-vmhost-csv-auth';
export const CSV_INTERNAL_PATH = '/api/v1/cluster/shared-volumes/internal';
const FRESH_MS = 60_000;
const CALL_TIMEOUT_MS = 120_000;

export type CsvRequest =
  | { Kind: 'check'; Volume: string; Path: string; Id: string }
  /** `From`: the node whose work needs it (logged by the coordinator). */
  | { Kind: 'op'; Volume: string; From: string; Op: VolumeOp };
export type CsvAnswer = VolumeCheck | { Done: true; By: string };

function mac(key: string, to: string, ms: string, nonce: string, body: string): Buffer {
  return createHmac('sha256', Buffer.from(key, 'base64')).update(`csv\n${to}\n${ms}\n${nonce}\n${body}`).digest();
}

/** The header value that signs `body` for node `to`. */
export function signCsvRequest(key: string, to: string, body: string, ms = Date.now(), nonce = randomBytes(12).toString('base64url')): string {
  return `${ms}.${nonce}.${mac(key, to, String(ms), nonce, body).toString('base64url')}`;
}

/** The receiving side: nonces seen in the last minute. */
export class CsvAuthChecker {
  private readonly seen = new Map<string, number>();

  check(key: string, to: string, header: string | undefined, body: string): void {
    const [ms = '', nonce = '', given = ''] = (header ?? '').split('.');
    const want = mac(key, to, ms, nonce, body);
    const got = Buffer.from(given, 'base64url');
    const now = Date.now();
    if (got.length !== want.length || !timingSafeEqual(got, want)) {
      throw new VmhostError('UNAUTHORIZED', `a shared-volume request to node ${to} was not signed with this cluster's key`, { node: to });
    }
    if (!(Math.abs(now - Number(ms)) <= FRESH_MS) || this.seen.has(nonce)) {
      throw new VmhostError('UNAUTHORIZED', `a shared-volume request to node ${to} is stale or replayed`, { node: to });
    }
    for (const [n, at] of this.seen) if (now - at > 2 * FRESH_MS) this.seen.delete(n);
    this.seen.set(nonce, now);
  }
}

/** Send `req` to node `to` at `url` (its alive record's API URL). */
export async function csvCall<T extends CsvAnswer>(url: string, key: string, to: string, req: CsvRequest): Promise<T> {
  if (!url.startsWith('http://')) {
    throw new VmhostError('CLUSTER_INVALID_OPERATION', `node ${to} listens on ${url}: nodes reach each other over plain HTTP on loopback only (as the cluster's live moves)`, { node: to });
  }
  const body = JSON.stringify(req);
  let res: Response;
  try {
    res = await fetch(url + CSV_INTERNAL_PATH, {
      method: 'POST', body, signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
      headers: { 'content-type': 'application/json', [CSV_AUTH_HEADER]: signCsvRequest(key, to, body) },
    });
  } catch (e) {
    throw new VmhostError('CLUSTER_CSV_NO_COORDINATOR', `node ${to} (${url}) cannot be reached: ${(e as Error).message}`, { node: to }, { cause: e });
  }
  const json = (await res.json().catch(() => null)) as (T & { code?: string; message?: string }) | null;
  if (!res.ok) {
    const code = json?.code !== undefined && isErrorCode(json.code) ? json.code : 'CLUSTER_INVALID_OPERATION';
    throw new VmhostError(code, `node ${to}: ${json?.message ?? `HTTP ${res.status}`}`, { node: to, status: res.status });
  }
  return json as T;
}
