// The cluster's one door to etcd: etcd's own v3 JSON gateway (grpc-gateway over HTTP, served by
// every etcd 3.4 member on its client URL) spoken with Node's fetch, so no npm client is needed
// (DESIGN §9: the `etcd3` package is barely maintained). Keys and values travel base64; int64s
// (revisions, lease ids) arrive as decimal strings and stay strings for lease ids.
// Several endpoints: a request goes to the one that answered last and moves on to the next on a
// network failure (an etcd member that is down); etcd itself forwards writes to its leader.
// A request's timeout follows the latency etcd shows (see RequestTimeouts): a member that does not
// answer is left after about 2 s while etcd is quick, but a slow etcd (a loaded machine, thousands
// of roles) is waited for instead of being asked again elsewhere, which only adds to its load.
import { VmhostError } from '../common/index.ts';

export interface EtcdKv {
  key: string;
  value: string;
  /** The revision of the last change of this key: the fencing token of an ownership key. */
  modRevision: number;
  createRevision: number;
  /** The lease the key is bound to ('0' when none). */
  lease: string;
}

/** One comparison of a transaction (etcd's Compare, the few forms the cluster uses). */
export type EtcdCompare =
  | { key: string; absent: true }
  | { key: string; modRevision: number }
  | { key: string; value: string };

export type EtcdOp =
  | { put: string; value: string; lease?: string }
  | { delete: string }
  | { get: string }
  /** Every key under a prefix. */
  | { range: string };

export interface EtcdTxnResult { succeeded: boolean; revision: number; gets: EtcdKv[][] }

export interface WatchEvent { type: 'PUT' | 'DELETE'; kv: EtcdKv }

/** One member of the etcd cluster: a vote unless it is a learner (etcd's Member). Ids are uint64s: kept as decimal strings. */
export interface EtcdMember { id: string; name: string; peerUrls: string[]; clientUrls: string[]; isLearner: boolean }

/** A request's timeout while etcd answers quickly: a member that does not answer by then is taken for down. */
const REQUEST_TIMEOUT_MIN_MS = 2000;
/** The most a request waits for one member, however slow etcd has been. */
const REQUEST_TIMEOUT_MAX_MS = 15_000;
/** The timeout is this many times the slowest recent answer. */
const LATENCY_HEADROOM = 4;
/** At each answer the slowest recent one is forgotten by this factor (about 50 answers to halve it). */
const LATENCY_DECAY = 0.986;

/**
 * How long a request waits for a member: LATENCY_HEADROOM × the slowest recent answer, within
 * [MIN, MAX], doubled for each member a call already timed out on (etcd may be slow everywhere
 * rather than that member down: without the doubling a slow etcd would never be waited for long
 * enough to show its latency).
 */
export class RequestTimeouts {
  private slowest = 0;

  answered(ms: number): void {
    this.slowest = Math.max(ms, this.slowest * LATENCY_DECAY);
  }

  /** The timeout of a call's `attempt`-th member (0 first). */
  ms(attempt = 0): number {
    const base = Math.min(REQUEST_TIMEOUT_MAX_MS, Math.max(REQUEST_TIMEOUT_MIN_MS, LATENCY_HEADROOM * this.slowest));
    return Math.round(Math.min(REQUEST_TIMEOUT_MAX_MS, base * 2 ** attempt));
  }
}

/** Why a fetch failed: undici says only "fetch failed" and keeps the socket's error (ECONNREFUSED, other side closed) as its cause. */
function fetchFailure(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  const detail = cause?.code ?? cause?.message;
  return `${(e as Error).message}${detail ? ` (${detail})` : ''}`;
}

function post(url: string, body: unknown, signal: AbortSignal): Promise<Response> {
  return fetch(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' }, signal });
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString('utf8');
/** The range end that makes a key a prefix (etcd's "next key after every key with this prefix"). */
function prefixEnd(prefix: string): string {
  const b = Buffer.from(prefix, 'utf8');
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) { b[i]! += 1; return b.subarray(0, i + 1).toString('base64'); }
  }
  return Buffer.from([0]).toString('base64');
}

interface RawKv { key?: string; value?: string; mod_revision?: string; create_revision?: string; lease?: string }
const kvOf = (k: RawKv): EtcdKv => ({
  key: unb64(k.key), value: unb64(k.value), modRevision: Number(k.mod_revision ?? 0), createRevision: Number(k.create_revision ?? 0), lease: k.lease ?? '0',
});

function compareOf(c: EtcdCompare): Record<string, unknown> {
  if ('absent' in c) return { key: b64(c.key), target: 'CREATE', result: 'EQUAL', create_revision: '0' };
  if ('modRevision' in c) return { key: b64(c.key), target: 'MOD', result: 'EQUAL', mod_revision: String(c.modRevision) };
  return { key: b64(c.key), target: 'VALUE', result: 'EQUAL', value: b64(c.value) };
}

function opOf(o: EtcdOp): Record<string, unknown> {
  if ('put' in o) return { request_put: { key: b64(o.put), value: b64(o.value), ...(o.lease ? { lease: o.lease } : {}) } };
  if ('delete' in o) return { request_delete_range: { key: b64(o.delete) } };
  if ('range' in o) return { request_range: { key: b64(o.range), range_end: prefixEnd(o.range) } };
  return { request_range: { key: b64(o.get) } };
}

/** Tries of a call etcd answered "leader changed" (100 ms apart): an election here takes well under a second. */
const LEADER_CHANGED_TRIES = 10;
/**
 * Tries of a call etcd answered "request timed out": its raft proposal (or read index) was not
 * committed within etcd's own request timeout (5 s + 2 election timeouts) — a slow disk or a
 * starved machine (seen at load 50 with 8,000 roles being registered). Like "leader changed" the
 * request may still be applied, so what is asked again must bear that (a put does; a conditional
 * txn answers "not succeeded" the second time, which its callers check against what they wrote).
 */
const ETCD_TIMED_OUT_TRIES = 3;
/**
 * How long a membership change etcd refused as "unhealthy cluster" is asked again (500 ms apart):
 * etcd 3.4 (strict reconfiguration check) changes membership only while every voting member has
 * been connected for its HealthInterval, 5 s — so a change right after another one (a member
 * removed then added back as a learner, a member just promoted) is refused for a few seconds.
 */
const UNHEALTHY_RETRY_MS = 12_000;

export class EtcdClient {
  private current = 0;
  /** Each request's timeout, from the latency etcd has shown this client. */
  readonly timeouts = new RequestTimeouts();
  /** Told of every write that changed the store: its revision and the keys it wrote (snapshot-cache.ts waits for them). */
  onWrite: ((revision: number, keys: string[]) => void) | undefined;

  constructor(readonly endpoints: readonly string[]) {
    if (endpoints.length === 0) throw new VmhostError('INVALID_ARGUMENT', 'etcd: no endpoint given', { param: 'cluster-etcd-endpoints' });
  }

  /**
   * POST one gateway call; a member that cannot be reached hands the call to the next one.
   * `deadline`: the caller's own end for the whole call (a keepalive's: its lease's guarantee), over the per-member timeouts.
   */
  private async call<T>(path: string, body: unknown, deadline?: AbortSignal): Promise<T> {
    // "leader changed": the member dropped a request in flight during an election (dynamic
    // quorum's member removals make elections common); asked again a moment later it answers.
    // "request timed out": etcd is slow (ETCD_TIMED_OUT_TRIES). Only these answers are retried:
    // "no leader" is what a partitioned node must see at once.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.callOnce<T>(path, body, deadline);
      } catch (e) {
        const again = e instanceof VmhostError && !deadline?.aborted
          && ((e.context.leaderChanged === 'true' && attempt < LEADER_CHANGED_TRIES) || (e.context.etcdTimedOut === 'true' && attempt < ETCD_TIMED_OUT_TRIES));
        if (!again) throw e;
        if (e.context.leaderChanged === 'true') await new Promise((ok) => setTimeout(ok, 100));
      }
    }
  }

  private async callOnce<T>(path: string, body: unknown, deadline?: AbortSignal): Promise<T> {
    let last: unknown;
    let timedOut = 0;
    // What each member did, for the error: a refused connection, a reset one and no answer in time are different failures.
    const tried: string[] = [];
    for (let n = 0; n < this.endpoints.length && !deadline?.aborted; n++) {
      const i = (this.current + n) % this.endpoints.length;
      const url = this.endpoints[i] + path;
      const timeout = AbortSignal.timeout(this.timeouts.ms(timedOut));
      const sentAt = performance.now();
      let res: Response;
      try {
        res = await post(url, body, deadline ? AbortSignal.any([deadline, timeout]) : timeout);
      } catch (e) {
        last = e;
        tried.push(`${this.endpoints[i]}: ${timeout.aborted ? `no answer in ${this.timeouts.ms(timedOut)} ms` : fetchFailure(e)}`);
        if (timeout.aborted) timedOut++;
        continue;
      }
      const answer = await this.answer<T>(this.endpoints[i]!, path, res);
      this.current = i;
      this.timeouts.answered(performance.now() - sentAt);
      return answer;
    }
    throw new VmhostError('CLUSTER_ETCD_UNREACHABLE', `etcd ${path}: no endpoint answered (${tried.join('; ') || this.endpoints.join(', ')})`,
      { op: path, endpoints: this.endpoints.join(',') }, { cause: last });
  }

  /** A member's answer to `path`: its JSON, or etcd's own refusal (no leader, lease not found) as CLUSTER_ETCD_FAILED. */
  private async answer<T>(endpoint: string, path: string, res: Response): Promise<T> {
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      // The answer began but did not finish in time: the call may have been applied, so it is
      // not sent to another member (a put twice is harmless, a txn twice need not be).
      throw new VmhostError('CLUSTER_ETCD_FAILED', `etcd ${path} at ${endpoint}: its answer did not arrive in time (${(e as Error).message})`, { op: path, endpoint }, { cause: e });
    }
    if (!res.ok) {
      // An answer from etcd itself (no leader, lease not found): the same on every member.
      throw new VmhostError('CLUSTER_ETCD_FAILED', `etcd ${path} at ${endpoint}: HTTP ${res.status} ${text.slice(0, 200)}`,
        {
          op: path, endpoint,
          ...(res.status === 503 && text.includes('leader changed') ? { leaderChanged: 'true' } : {}),
          ...(res.status === 503 && text.includes('request timed out') ? { etcdTimedOut: 'true' } : {}),
          ...(text.includes('requested lease not found') ? { leaseNotFound: 'true' } : {}),
          ...(res.status === 503 && text.includes('unhealthy cluster') ? { unhealthy: 'true' } : {}),
        });
    }
    return JSON.parse(text) as T;
  }

  /** A call that only one member can answer (its own status; MoveLeader, which only the leader takes). */
  private async callAt<T>(endpoint: string, path: string, body: unknown): Promise<T> {
    let res: Response;
    try {
      res = await post(endpoint + path, body, AbortSignal.timeout(this.timeouts.ms()));
    } catch (e) {
      throw new VmhostError('CLUSTER_ETCD_UNREACHABLE', `etcd ${path} at ${endpoint}: ${fetchFailure(e)}`, { op: path, endpoint }, { cause: e });
    }
    return this.answer<T>(endpoint, path, res);
  }

  /** A membership change, asked again while etcd refuses it as "unhealthy cluster" (see UNHEALTHY_RETRY_MS). */
  private async reconfigure<T>(path: string, body: unknown): Promise<T> {
    const deadline = Date.now() + UNHEALTHY_RETRY_MS;
    for (;;) {
      try {
        return await this.call<T>(path, body);
      } catch (e) {
        if (!(e instanceof VmhostError && e.context.unhealthy === 'true') || Date.now() > deadline) throw e;
        await new Promise((ok) => setTimeout(ok, 500));
      }
    }
  }

  async get(key: string): Promise<EtcdKv | undefined> {
    const r = await this.call<{ kvs?: RawKv[] }>('/v3/kv/range', { key: b64(key) });
    return r.kvs?.[0] ? kvOf(r.kvs[0]) : undefined;
  }

  /** Every key under a prefix, in key order, and the store's revision at that read. */
  async range(prefix: string): Promise<{ kvs: EtcdKv[]; revision: number }> {
    const r = await this.call<{ kvs?: RawKv[]; header?: { revision?: string } }>('/v3/kv/range', { key: b64(prefix), range_end: prefixEnd(prefix) });
    return { kvs: (r.kvs ?? []).map(kvOf), revision: Number(r.header?.revision ?? 0) };
  }

  /** Put; the answer is the store's revision after it (the key's new mod revision). */
  async put(key: string, value: string, lease?: string): Promise<number> {
    const r = await this.call<{ header?: { revision?: string } }>('/v3/kv/put', { key: b64(key), value: b64(value), ...(lease ? { lease } : {}) });
    const revision = Number(r.header?.revision ?? 0);
    this.onWrite?.(revision, [key]);
    return revision;
  }

  async delete(key: string): Promise<void> {
    const r = await this.call<{ header?: { revision?: string }; deleted?: string }>('/v3/kv/deleterange', { key: b64(key) });
    // Deleting nothing leaves the revision where it was: no write to wait for.
    if (Number(r.deleted ?? 0) > 0) this.onWrite?.(Number(r.header?.revision ?? 0), [key]);
  }

  /** All compares true → `success`, else `failure`; atomic (etcd's Txn). */
  async txn(compare: EtcdCompare[], success: EtcdOp[], failure: EtcdOp[] = []): Promise<EtcdTxnResult> {
    type RawResp = { response_range?: { kvs?: RawKv[] }; response_delete_range?: { deleted?: string } };
    const r = await this.call<{ succeeded?: boolean; header?: { revision?: string }; responses?: RawResp[] }>('/v3/kv/txn', {
      compare: compare.map(compareOf), success: success.map(opOf), failure: failure.map(opOf),
    });
    const ran = r.succeeded === true ? success : failure;
    const wrote = ran.some((o) => 'put' in o) || (r.responses ?? []).some((x) => Number(x.response_delete_range?.deleted ?? 0) > 0);
    if (wrote) this.onWrite?.(Number(r.header?.revision ?? 0), ran.flatMap((o) => ('put' in o ? [o.put] : 'delete' in o ? [o.delete] : [])));
    return {
      succeeded: r.succeeded === true,
      revision: Number(r.header?.revision ?? 0),
      gets: (r.responses ?? []).filter((x) => x.response_range).map((x) => (x.response_range!.kvs ?? []).map(kvOf)),
    };
  }

  /** A new lease of `ttlSeconds`: its id. */
  async grant(ttlSeconds: number): Promise<string> {
    const r = await this.call<{ ID?: string }>('/v3/lease/grant', { TTL: String(ttlSeconds) });
    if (!r.ID) throw new VmhostError('CLUSTER_ETCD_FAILED', 'etcd lease grant answered no id', { op: 'lease-grant' });
    return r.ID;
  }

  /** One keepalive: the lease's remaining TTL in seconds after it, 0 when it has expired. `deadline`: no answer is waited for past it. */
  async keepAlive(id: string, deadline?: AbortSignal): Promise<number> {
    const r = await this.call<{ result?: { TTL?: string } }>('/v3/lease/keepalive', { ID: id }, deadline);
    return Number(r.result?.TTL ?? 0);
  }

  async revoke(id: string): Promise<void> {
    await this.call('/v3/lease/revoke', { ID: id });
  }

  /** etcd's membership, as the member answering sees it (linearizable in 3.4: it asks its leader). */
  async members(): Promise<EtcdMember[]> {
    type RawMember = { ID?: string; name?: string; peerURLs?: string[]; clientURLs?: string[]; isLearner?: boolean };
    const r = await this.call<{ members?: RawMember[] }>('/v3/cluster/member/list', {});
    return (r.members ?? []).map((m) => ({ id: m.ID ?? '0', name: m.name ?? '', peerUrls: m.peerURLs ?? [], clientUrls: m.clientURLs ?? [], isLearner: m.isLearner === true }));
  }

  /**
   * Take a member's vote away for good (etcd's MemberRemove, committed by a majority of the members
   * before it). A leader removed stops at once and the others wait an election timeout or more
   * (1.1 s measured on an idle machine, 1.35 s under load) before anyone answers again — long
   * enough for a node whose lease guarantee was already short to fence itself and turn its VMs off.
   * So the leader hands its leadership to another voting member first (etcd's MoveLeader: the
   * target campaigns at once); if no member takes it, the removal goes ahead and the others elect
   * as before.
   */
  async removeMember(id: string): Promise<void> {
    await this.handOverLeadership(id).catch(() => undefined);
    await this.reconfigure('/v3/cluster/member/remove', { ID: id });
  }

  /** When member `id` leads, another started voting member leads instead (the first that takes it). */
  private async handOverLeadership(id: string): Promise<void> {
    // Any member knows the leader; the member leaving is asked only when it leads (a dead one, say
    // Remove-ClusterNode of a crashed node, is then never waited for).
    const st = await this.call<{ leader?: string }>('/v3/maintenance/status', {});
    if (st.leader !== id) return;
    const members = await this.members();
    const at = members.find((m) => m.id === id)?.clientUrls[0];
    if (!at) return;
    for (const m of members.filter((x) => x.id !== id && !x.isLearner && x.name !== '')) {
      const moved = await this.callAt(at, '/v3/maintenance/transfer-leadership', { targetID: m.id }).then(() => true, () => false);
      if (moved) return;
    }
  }

  /** A new member that does not vote yet (etcd 3.4's learner): its id. It must then start on an empty data dir. */
  async addLearner(peerUrls: readonly string[]): Promise<string> {
    const r = await this.reconfigure<{ member?: { ID?: string } }>('/v3/cluster/member/add', { peerURLs: peerUrls, isLearner: true });
    if (!r.member?.ID) throw new VmhostError('CLUSTER_ETCD_FAILED', 'etcd member add answered no id', { op: 'member-add' });
    return r.member.ID;
  }

  /** Give a learner its vote; etcd refuses until the learner has caught up with the leader's log. */
  async promote(id: string): Promise<void> {
    await this.call('/v3/cluster/member/promote', { ID: id });
  }

  /**
   * Changes under a prefix after `fromRevision`, one callback per event, until `signal` aborts
   * or the stream breaks (the promise then settles: the caller re-reads and watches again).
   */
  async watch(prefix: string, fromRevision: number, onEvent: (e: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    let last: unknown;
    for (let n = 0; n < this.endpoints.length; n++) {
      const i = (this.current + n) % this.endpoints.length;
      let res: Response;
      try {
        res = await fetch(this.endpoints[i] + '/v3/watch', {
          method: 'POST', signal, headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ create_request: { key: b64(prefix), range_end: prefixEnd(prefix), start_revision: String(fromRevision) } }),
        });
      } catch (e) {
        if (signal.aborted) return;
        last = e;
        continue;
      }
      if (!res.ok || !res.body) { last = new Error(`HTTP ${res.status}`); continue; }
      let buffered = '';
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buffered += Buffer.from(chunk).toString('utf8');
          let nl: number;
          while ((nl = buffered.indexOf('\n')) >= 0) {
            const line = buffered.slice(0, nl).trim();
            buffered = buffered.slice(nl + 1);
            if (line === '') continue;
            const msg = JSON.parse(line) as { result?: { events?: { type?: string; kv?: RawKv }[]; canceled?: boolean } };
            for (const ev of msg.result?.events ?? []) onEvent({ type: ev.type === 'DELETE' ? 'DELETE' : 'PUT', kv: kvOf(ev.kv ?? {}) });
            // A canceled watch (its start compacted away) says nothing more: the caller re-reads.
            if (msg.result?.canceled) return;
          }
        }
      } catch (e) {
        if (signal.aborted) return;
        last = e;
      }
      return;
    }
    if (!signal.aborted) {
      throw new VmhostError('CLUSTER_ETCD_UNREACHABLE', `etcd watch ${prefix}: no endpoint answered: ${(last as Error | undefined)?.message ?? ''}`, { op: 'watch' }, { cause: last });
    }
  }
}
