// The tenant half of the network virtualization policy (lookup records, customer routes) kept in
// the cluster's etcd, so every node's switches route with the same records — Hyper-V leaves this
// to SCVMM pushing each host; a cluster that already agrees on everything through etcd can do it
// itself. One key, the whole half as JSON (it changes when an admin or a move changes policy, not
// per packet), under a prefix of its own so the nodes' loop neither reads nor wakes for it:
//   /vmhost/clusterhnv/policy   {lookupRecords, customerRoutes}
// A change is a compare-and-swap on the key's mod revision, run again on a conflict, so two
// nodes' changes never lose each other; each node follows the key with a watch, and re-reads it
// whenever the watch breaks. The provider addresses stay each host's (host/hnv-store.ts).
import { VmhostError } from '../common/index.ts';
import type { SharedTenantPolicy, TenantPolicy } from '../host/index.ts';
import type { EtcdClient } from './etcd-client.ts';

export const HNV_POLICY_KEY = '/vmhost/clusterhnv/policy';

function parse(value: string): TenantPolicy {
  const v = JSON.parse(value) as Partial<TenantPolicy>;
  if (!Array.isArray(v.lookupRecords) || !Array.isArray(v.customerRoutes)) {
    throw new VmhostError('HNV_BAD_POLICY', `${HNV_POLICY_KEY} in etcd holds no lookupRecords and customerRoutes lists`, { op: 'hnv-policy' });
  }
  return { lookupRecords: v.lookupRecords, customerRoutes: v.customerRoutes };
}

export class EtcdTenantPolicy implements SharedTenantPolicy {
  private readonly abort = new AbortController();

  constructor(private readonly etcd: EtcdClient) {}

  async update(fn: (cur: TenantPolicy | undefined) => TenantPolicy): Promise<TenantPolicy> {
    for (;;) {
      const kv = await this.etcd.get(HNV_POLICY_KEY);
      const cur = kv ? parse(kv.value) : undefined;
      const next = fn(cur);
      const value = JSON.stringify({ lookupRecords: next.lookupRecords, customerRoutes: next.customerRoutes });
      if (kv && kv.value === value) return cur!;
      const r = await this.etcd.txn([kv ? { key: HNV_POLICY_KEY, modRevision: kv.modRevision } : { key: HNV_POLICY_KEY, absent: true }], [{ put: HNV_POLICY_KEY, value }]);
      if (r.succeeded) return next;
    }
  }

  follow(fn: (p: TenantPolicy) => void): void {
    void (async () => {
      while (!this.abort.signal.aborted) {
        try {
          // From the key's current version: what changed while the watch was down is read here.
          const kv = await this.etcd.get(HNV_POLICY_KEY);
          if (kv) fn(parse(kv.value));
          await this.etcd.watch(HNV_POLICY_KEY, (kv?.modRevision ?? 0) + 1, (e) => { if (e.type === 'PUT') fn(parse(e.kv.value)); }, this.abort.signal);
        } catch {
          // etcd unreachable or a bad value: this node keeps the version it has and tries again.
        }
        if (!this.abort.signal.aborted) await new Promise((r) => setTimeout(r, 1000));
      }
    })();
  }

  close(): void {
    this.abort.abort();
  }
}
