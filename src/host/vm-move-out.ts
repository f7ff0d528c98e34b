// Move-VM, the source's side (shared storage: the disks stay where both hosts reach them).
// With the VM Migrating under its lock: the destination prepares (vm-move-in.ts) on the ticket
// the caller got from it, QEMU pre-copies memory through the relay (migration-stream.ts) until
// its last round stops the VM, this host stops serving the disks (their locks released), and
// the destination commits — it opens the disks and resumes the VM. Until the commit answers
// the source QEMU is kept, paused, so any failure (or Stop-Job) resumes the VM here untouched;
// a commit whose answer is lost is asked about again (GET the move) and, while nobody can say,
// the VM stays paused here rather than risk running twice.
import { isErrorCode, VmhostError } from '../common/index.ts';
import type { MigrationInfo } from '../qemu/index.ts';
import type { JobHandle } from './jobs.ts';
import type { PerformanceOption } from './migration-settings.ts';
import { sourceRelay, moveSocketDir } from './migration-stream.ts';
import type { MovePrepare, PreparedMove } from './vm-move-in.ts';
import type { VmView } from './vm-view.ts';

export interface MoveRequest {
  /** HOST:PORT of the destination daemon. */
  destination: string;
  /** Issued by the destination to the caller (POST /migrations/tickets there). */
  ticket: string;
}

/** What the source sends, and the calls it makes to the destination. */
export interface Destination {
  prepare(body: MovePrepare): Promise<PreparedMove>;
  commit(move: PreparedMove, uptimeMs: number): Promise<VmView>;
  outcome(move: PreparedMove, vmId: string): Promise<'Prepared' | 'Committed' | 'Gone'>;
  abort(move: PreparedMove): Promise<void>;
  readonly host: string;
}

const CALL_TIMEOUT_MS = 120_000;
const OUTCOME_TRIES = 30;

/** The destination daemon over HTTP: the ticket opens the move, its secret every later call. Loopback only (no TLS yet). */
export function httpDestination(destination: string, ticket: string): Destination {
  const m = /^(127\.0\.0\.1|localhost|\[::1\]):(\d{1,5})$/.exec(destination);
  if (!m) {
    throw new VmhostError('MIGRATION_UNSUPPORTED', `DestinationHost: '${destination}' must be 127.0.0.1:PORT (moves between machines need an encrypted stream, not built yet)`, { param: 'DestinationHost' });
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
    commit: (mv, uptimeMs) => call<VmView>('POST', `/${mv.MoveId}/commit`, auth(mv), { UptimeMs: uptimeMs }),
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

/** The source host's side, as Host hands it to the move. */
export interface MoveOutVm {
  readonly name: string;
  readonly id: string;
  readonly socketRoot: string;
  readonly qemuGroup: number | undefined;
  readonly performance: PerformanceOption;
  /** The local address the stream leaves from to reach the destination's `address` (migration networks); throws when none may. */
  streamFrom(address: string): string | undefined;
  /** The prepare body: config, disk geometry, NVRAM, counters. */
  describe(): Promise<MovePrepare>;
  uptimeMs(): number;
  migrate(uri: string, p: PerformanceOption, onProgress: (i: MigrationInfo) => void, signal: AbortSignal): Promise<unknown>;
  /** Stop serving the disks (the source QEMU is inactive): the destination may open them. */
  releaseDisks(): Promise<void>;
  /** Undo: serve the disks again and resume the source QEMU. */
  resumeHere(): Promise<void>;
  /** Done: the source QEMU quits and the VM leaves this host. */
  leave(): Promise<void>;
}

/** Progress text of a running pre-copy: what Get-Job shows. */
export function progressText(i: MigrationInfo, phase: string): string {
  const r = i.ram;
  const mb = (n: number | undefined) => `${Math.round((n ?? 0) / 1048576)} MiB`;
  const parts = [phase, `${mb(r?.transferred)} sent`];
  if (r && 'dirty-pages-rate' in r) parts.push(`dirty ${Math.round(((r as { 'dirty-pages-rate': number })['dirty-pages-rate'] * 4096) / 1048576)} MiB/s`);
  if (i['expected-downtime'] !== undefined) parts.push(`expected downtime ${i['expected-downtime']} ms`);
  if (i['cpu-throttle-percentage'] !== undefined) parts.push(`vCPUs throttled ${i['cpu-throttle-percentage']} %`);
  return parts.join(', ');
}

/** The move itself (the caller holds the VM Migrating under its lock and a queue slot). */
export async function moveOut(vm: MoveOutVm, dest: Destination, h: JobHandle, signal: AbortSignal): Promise<VmView> {
  h.progress(2, 'Preparing the destination');
  const prepared = await dest.prepare(await vm.describe());
  // The destination's stream listener is on its migration networks (on all addresses: the one we called); this host sends only into its own.
  const address = /^(0\.0\.0\.0|::)$/.test(prepared.Address) ? dest.host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '') : prepared.Address;
  let from: string | undefined;
  try {
    from = vm.streamFrom(address);
  } catch (e) {
    await dest.abort(prepared).catch(() => undefined);
    throw e;
  }
  const dir = await moveSocketDir(vm.socketRoot, vm.qemuGroup, false);
  const relay = await sourceRelay(dir, vm.qemuGroup, { host: address, port: prepared.Port, localAddress: from }, Buffer.from(prepared.Secret, 'base64'));
  try {
    await vm.migrate(relay.uri, vm.performance, (i) => {
      const r = i.ram;
      const pct = r && r.total > 0 ? Math.min(90, 5 + (85 * (r.total - r.remaining)) / r.total) : 5;
      h.progress(pct, progressText(i, i.status === 'device' ? 'Transferring device state' : 'Copying memory'));
    }, signal);
  } catch (e) {
    await relay.close();
    await dest.abort(prepared).catch(() => undefined);
    throw e;
  } finally {
    await relay.close();
  }
  h.progress(92, 'Handing the disks over');
  await vm.releaseDisks();
  let view: VmView;
  try {
    view = await dest.commit(prepared, vm.uptimeMs());
  } catch (e) {
    const outcome = e instanceof VmhostError && e.code !== 'MIGRATION_DESTINATION_UNREACHABLE' && e.code !== 'INTERNAL' && e.code !== 'MIGRATION_FAILED'
      ? 'Gone' : await askOutcome(dest, prepared, vm.id);
    if (outcome === 'Committed') {
      await vm.leave();
      throw new VmhostError('MIGRATION_OUTCOME_UNKNOWN', `VM '${vm.name}' was moved to ${dest.host}, but its answer was lost (${(e as Error).message}); it runs there now`, { vm: vm.name });
    }
    if (outcome === 'Gone') {
      await dest.abort(prepared).catch(() => undefined);
      await vm.resumeHere();
      throw e;
    }
    throw new VmhostError('MIGRATION_OUTCOME_UNKNOWN',
      `VM '${vm.name}': the destination ${dest.host} did not say whether it took the VM (${(e as Error).message}); it stays paused here so it never runs twice — check Get-VM on ${dest.host}, then Resume-VM here or Remove-VM here`, { vm: vm.name });
  }
  h.progress(97, 'Removing the VM from this host');
  await vm.leave();
  return view;
}

async function askOutcome(dest: Destination, mv: PreparedMove, vmId: string): Promise<'Committed' | 'Gone' | 'Unknown'> {
  for (let i = 0; i < OUTCOME_TRIES; i++) {
    try {
      const s = await dest.outcome(mv, vmId);
      if (s !== 'Prepared') return s;
    } catch { /* not reachable yet */ }
    await new Promise((r) => setTimeout(r, 1000));
  }
  return 'Unknown';
}
