// Move-VM: the destination daemon as the source sees it — the HTTP calls of a move. The
// caller's ticket (issued by the destination to someone holding its credential) opens the move,
// the move's secret every later call: the source never holds or sends a token of its own.
import { isErrorCode, VmhostError } from '../common/index.ts';
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

/** The destination daemon over HTTP: the ticket opens the move, its secret every later call. Loopback only: these calls carry the move's secret and the streams' certificate fingerprint, and are not over HTTPS yet (the streams themselves are TLS). */
export function httpDestination(destination: string, ticket: string): Destination {
  const m = /^(127\.0\.0\.1|localhost|\[::1\]):(\d{1,5})$/.exec(destination);
  if (!m) {
    throw new VmhostError('MIGRATION_UNSUPPORTED', `DestinationHost: '${destination}' must be 127.0.0.1:PORT (moves between machines need the prepare over HTTPS, not built yet; the streams are TLS already)`, { param: 'DestinationHost' });
  }
  const base = `http://${destination}/api/v1/migrations`;
  const call = async <T>(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<T> => {
    let res: Response;
    try {
      res = await fetch(base + path, {
        method, headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
      });
    } catch (e) {
      throw new VmhostError('MIGRATION_DESTINATION_UNREACHABLE', `the destination host ${destination} cannot be reached: ${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message}`, { host: destination }, { cause: e });
    }
    const text = await res.text();
    const json = text === '' ? null : (JSON.parse(text) as unknown);
    if (!res.ok) {
      const err = json as { code?: string; message?: string } | null;
      const code = err?.code !== undefined && isErrorCode(err.code) ? err.code : 'MIGRATION_FAILED';
      throw new VmhostError(code, `destination ${destination}: ${err?.message ?? `HTTP ${res.status}`}`, { host: destination, status: res.status });
    }
    return json as T;
  };
  const auth = (m2: PreparedMove) => ({ 'x-vmhost-migration-secret': m2.Secret });
  return {
    host: destination,
    prepare: (body) => call<PreparedMove>('POST', '', { 'x-vmhost-migration-ticket': ticket }, body),
    commit: (mv, uptimeMs, metering) => call<VmView>('POST', `/${mv.MoveId}/commit`, auth(mv), { UptimeMs: uptimeMs, ...(metering ? { Metering: metering } : {}) }),
    outcome: async (mv, vmId) => {
      try {
        return (await call<{ State: 'Prepared' | 'Committed' }>('GET', `/${mv.MoveId}?vm=${vmId}`, auth(mv))).State;
      } catch (e) {
        if (e instanceof VmhostError && e.code === 'NOT_FOUND') return 'Gone';
        throw e;
      }
    },
    abort: (mv) => call<void>('DELETE', `/${mv.MoveId}`, auth(mv)),
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
