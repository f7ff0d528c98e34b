// Move-VM: the destination daemon as the source sees it — the HTTPS calls of a move. The
// caller's ticket (issued by the destination to someone holding its credential) opens the move,
// the move's secret every later call: the source never holds or sends a token of its own, and
// none of them crosses a network — loopback included — in clear: the destination's certificate
// is pinned on first use in this daemon's DIR/known_hosts (common/known-hosts.ts, as the CLI
// pins), a changed one refused (TLS_CERTIFICATE_CHANGED) before the ticket is written.
import { isErrorCode, isVmhostError, VmhostError } from '../common/index.ts';
import type { KnownHosts } from '../common/known-hosts.ts';
import { exchange, type HttpResponse, type VerifyPeer } from '../common/pinned-http.ts';
import type { MeteringState } from './metering-state.ts';
import type { MovePrepare, PreparedMove } from './vm-move-in.ts';
import type { VmView } from './vm-view.ts';

/** What the source sends, and the calls it makes to the destination. */
export interface Destination {
  prepare(body: MovePrepare): Promise<PreparedMove>;
  /** The source has let go: the VM's uptime and its resource metering (when enabled) go along. */
  commit(move: PreparedMove, uptimeMs: number, metering: MeteringState | undefined): Promise<VmView>;
  outcome(move: PreparedMove, vmId: string): Promise<'Prepared' | 'Committed' | 'Gone'>;
  abort(move: PreparedMove): Promise<void>;
  readonly host: string;
}

const CALL_TIMEOUT_MS = 120_000;
const OUTCOME_TRIES = 30;

/** How this daemon trusts the daemons it calls: their certificates pinned on first use in its own known_hosts. */
export interface DestinationTrust {
  readonly knownHosts: KnownHosts;
  /** A host pinned for the first time (an event says so, as the CLI warns). */
  notice(message: string): void;
}

/** A call to another daemon's API; a refusal is its code (MIGRATION_FAILED when unknown) with `status` in the context. */
export type DaemonCall = <T>(method: string, path: string, headers: Record<string, string>, body?: unknown) => Promise<T>;

/**
 * Another daemon's API as this daemon calls it: always HTTPS — a loopback daemon answers TLS
 * on its API port too (api/http-or-tls.ts) — its certificate judged by `trust` before a byte of
 * the request (a ticket, a credential, the move's secret) is written. DestinationHost is HOST:PORT.
 */
export function daemonCall(destination: string, trust: DestinationTrust): DaemonCall {
  const url = destinationUrl(destination);
  const key = url.host;
  const verify: VerifyPeer = (fp) => trust.knownHosts.check(key, fp, (msg) => trust.notice(msg));
  return async <T>(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<T> => {
    let res: HttpResponse;
    try {
      res = await exchange(new URL(`/api/v1${path}`, url), {
        method, headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body), timeoutMs: CALL_TIMEOUT_MS,
      }, verify);
    } catch (e) {
      if (isVmhostError(e, 'TLS_CERTIFICATE_CHANGED')) throw e;
      throw new VmhostError('MIGRATION_DESTINATION_UNREACHABLE', `the destination host ${destination} cannot be reached over HTTPS: ${(e as Error).message}`, { host: destination }, { cause: e });
    }
    let json: unknown = null;
    try { json = res.text === '' ? null : JSON.parse(res.text) as unknown; } catch { /* not JSON: said below */ }
    if (res.status < 200 || res.status > 299) {
      const err = json as { code?: string; message?: string } | null;
      const code = err?.code !== undefined && isErrorCode(err.code) ? err.code : 'MIGRATION_FAILED';
      throw new VmhostError(code, `destination ${destination}: ${err?.message ?? `HTTP ${res.status}`}`, { host: destination, status: res.status });
    }
    return json as T;
  };
}

/** DestinationHost as the URL of its API. */
function destinationUrl(destination: string): URL {
  let url: URL | undefined;
  try { url = new URL(`https://${destination}`); } catch { url = undefined; }
  if (!url || url.port === '' || url.host !== destination.toLowerCase()) {
    throw new VmhostError('INVALID_ARGUMENT', `DestinationHost: '${destination}' is not HOST:PORT`, { param: 'DestinationHost' });
  }
  return url;
}

/** The destination daemon: the ticket opens the move, its secret every later call. */
export function httpDestination(destination: string, ticket: string, trust: DestinationTrust): Destination {
  const call = daemonCall(destination, trust);
  const auth = (m2: PreparedMove) => ({ 'x-vmhost-migration-secret': m2.Secret });
  return {
    host: destination,
    prepare: (body) => call<PreparedMove>('POST', '/migrations', { 'x-vmhost-migration-ticket': ticket }, body),
    commit: (mv, uptimeMs, metering) => call<VmView>('POST', `/migrations/${mv.MoveId}/commit`, auth(mv), { UptimeMs: uptimeMs, ...(metering ? { Metering: metering } : {}) }),
    outcome: async (mv, vmId) => {
      try {
        return (await call<{ State: 'Prepared' | 'Committed' }>('GET', `/migrations/${mv.MoveId}?vm=${vmId}`, auth(mv))).State;
      } catch (e) {
        if (e instanceof VmhostError && e.code === 'NOT_FOUND') return 'Gone';
        throw e;
      }
    },
    abort: (mv) => call<void>('DELETE', `/migrations/${mv.MoveId}`, auth(mv)),
  };
}

/** A commit whose answer was lost: ask until the destination says Committed or Gone (30 s), else Unknown. */
export async function askOutcome(dest: Destination, mv: PreparedMove, vmId: string): Promise<'Committed' | 'Gone' | 'Unknown'> {
  for (let i = 0; i < OUTCOME_TRIES; i++) {
    try {
      const s = await dest.outcome(mv, vmId);
      if (s !== 'Prepared') return s;
    } catch { /* not reachable yet */ }
    await new Promise((r) => setTimeout(r, 1000));
  }
  return 'Unknown';
}
