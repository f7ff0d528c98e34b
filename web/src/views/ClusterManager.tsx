// Failover Cluster Manager: the cluster this host is a node of (Get-Cluster), its nodes with
// state and votes (Get-ClusterNode; Suspend-ClusterNode -Drain, Resume-ClusterNode -Failback),
// and its roles — clustered VMs — with owner, priority and possible owners (Get-ClusterGroup;
// Start-/Stop-ClusterGroup, Move-ClusterVirtualMachineRole, the Priority setting). Every
// action waits on the API as the cmdlet does, so a button stays busy until the node has
// drained or the role is online on its new owner. Below them, the Cluster Shared Volumes with the
// node coordinating each (Get-ClusterSharedVolume). A daemon that is no cluster node says so.
// A Cluster-Aware Updating run in progress is shown between the nodes and the roles (CauRunPanel).
import { useState } from 'react';
import { api, type ClusterGroupView, type ClusterNodeView, type ClusterPriority, type ClusterSharedVolumeView, type ClusterView } from '../api.ts';
import { useApi, useInterval } from '../live.ts';
import { useSubmit } from '../submit.ts';
import { CauRunPanel } from './CauRunPanel.tsx';
import { PageHeader } from './common.tsx';
import { toast } from './Toasts.tsx';

const PRIORITIES: { value: ClusterPriority; label: string }[] = [
  { value: 3000, label: 'High' }, { value: 2000, label: 'Medium' }, { value: 1000, label: 'Low' }, { value: 0, label: 'No Auto Start' },
];
const enc = encodeURIComponent;

export function ClusterManager() {
  const every2 = useInterval(2000);
  const cluster = useApi<ClusterView>('/cluster', [every2]);
  const nodes = useApi<ClusterNodeView[]>(cluster.data ? '/cluster/nodes' : null, [every2]);
  const groups = useApi<ClusterGroupView[]>(cluster.data ? '/cluster/groups' : null, [every2]);
  const volumes = useApi<ClusterSharedVolumeView[]>(cluster.data ? '/cluster/shared-volumes' : null, [every2]);
  const reload = () => { nodes.reload(); groups.reload(); };
  if (cluster.error?.code === 'CLUSTER_NOT_CONFIGURED') {
    return (
      <section>
        <PageHeader title="Failover Cluster Manager" />
        <p className="notice" role="status">This host is not a cluster node. Start vmhostd with --cluster-etcd-endpoints and --cluster-storage (see the README), then New-Cluster.</p>
      </section>
    );
  }
  if (cluster.error && !cluster.data) return <p className="error-text" role="alert">{cluster.error.message}</p>;
  if (!cluster.data) return <p className="muted" aria-busy="true">Loading…</p>;
  const c = cluster.data;
  const up = (nodes.data ?? []).filter((n) => n.State === 'Up').map((n) => n.Name);
  return (
    <section aria-labelledby="cl-title">
      <PageHeader title={<span id="cl-title">Failover Cluster Manager: {c.Name}</span>} />
      <p className="muted small">Dynamic quorum {c.DynamicQuorum ? 'on' : 'off'} · shared storage <code>{c.SharedVolumesRoot}</code></p>
      <h2>Nodes</h2>
      <table className="grid" aria-label="Nodes">
        <thead><tr><th>Name</th><th>Status</th><th className="num">Node weight</th><th className="num">Dynamic weight</th><th>Drain status</th><th /></tr></thead>
        <tbody>
          {(nodes.data ?? []).map((n) => <NodeRow key={n.Id} node={n} onDone={reload} />)}
        </tbody>
      </table>
      <CauRunPanel />
      <h2>Roles</h2>
      <table className="grid" aria-label="Roles">
        <thead><tr><th>Name</th><th>Status</th><th>Owner node</th><th>Priority</th><th>Possible owners</th><th /></tr></thead>
        <tbody>
          {(groups.data ?? []).length === 0 && <tr><td colSpan={6} className="empty">No roles yet: Add-ClusterVirtualMachineRole -VMName NAME makes an Off VM on the shared storage a clustered role.</td></tr>}
          {(groups.data ?? []).map((g) => <RoleRow key={g.Id} group={g} upNodes={up} onDone={reload} />)}
        </tbody>
      </table>
      <h2>Cluster Shared Volumes</h2>
      <table className="grid" aria-label="Cluster Shared Volumes">
        <thead><tr><th>Name</th><th>Status</th><th>Coordinator</th><th>Path</th><th className="num">Disk files</th></tr></thead>
        <tbody>
          {(volumes.data ?? []).length === 0 && <tr><td colSpan={5} className="empty">No volumes yet: Add-ClusterSharedVolume -Name NAME -Path DIR shares a directory every node reaches.</td></tr>}
          {(volumes.data ?? []).map((v) => (
            <tr key={v.Id} data-volume={v.Name}>
              <td>{v.Name}</td><td>{v.State}</td><td>{v.OwnerNode || '—'}</td><td><code>{v.Path}</code></td><td className="num">{v.Files.length}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function NodeRow({ node: n, onDone }: { node: ClusterNodeView; onDone: () => void }) {
  const { busy, error, submit } = useSubmit();
  const act = (verb: 'suspend' | 'resume', body: object, done: string) => void submit(async () => {
    const after = await api<ClusterNodeView>('POST', `/cluster/nodes/${enc(n.Name)}/${verb}`, body);
    // A drain that left roles behind still pauses the node (as Suspend-ClusterNode does): the
    // call succeeds with DrainStatus Failed, and the admin must not be told it drained.
    if (after.DrainStatus === 'Failed') toast(`Drain of ${n.Name} failed: roles are still on it (the cluster log says why)`, 'error');
    else toast(done);
    onDone();
  });
  return (
    <tr data-node={n.Name}>
      <td>{n.Name}</td>
      <td data-node-state={n.State} className={n.State === 'Down' ? 'error-text' : undefined}>{n.State}</td>
      <td className="num">{n.NodeWeight}</td>
      <td className="num">{n.DynamicWeight}</td>
      <td>{n.DrainStatus}{error && <span className="error-text" role="alert"> {error.message}</span>}</td>
      <td><div className="cluster-actions">
        <button type="button" className="btn" disabled={busy || n.State !== 'Up'} onClick={() => act('suspend', { Drain: true }, `Drained ${n.Name}`)}>{busy && n.State === 'Up' ? 'Draining…' : 'Pause (Drain Roles)'}</button>
        <button type="button" className="btn" disabled={busy || n.State !== 'Paused'} onClick={() => act('resume', { Failback: 'Immediate' }, `Resumed ${n.Name}`)}>Resume (Fail Roles Back)</button>
      </div></td>
    </tr>
  );
}

function RoleRow({ group: g, upNodes, onDone }: { group: ClusterGroupView; upNodes: string[]; onDone: () => void }) {
  const { busy, error, submit } = useSubmit(['Priority', 'Node']);
  const targets = upNodes.filter((n) => n !== g.OwnerNode && (g.OwnerNodes.length === 0 || g.OwnerNodes.includes(n)));
  const [target, setTarget] = useState('');
  const run = (fn: () => Promise<unknown>, done: string) => void submit(async () => {
    await fn();
    toast(done);
    onDone();
  });
  const to = target || targets[0] || '';
  return (
    <tr data-role={g.Name}>
      <td>{g.Name}</td>
      <td data-role-state={g.State}>{g.State}</td>
      <td>{g.OwnerNode || <span className="muted">—</span>}</td>
      <td>
        <select aria-label={`Priority of ${g.Name}`} value={g.Priority} disabled={busy}
          onChange={(e) => run(() => api('PATCH', `/cluster/groups/${enc(g.Name)}`, { Priority: Number(e.target.value) }), `${g.Name}: priority set`)}>
          {PRIORITIES.map((p) => <option key={p.value} value={p.value}>{p.label}</option>)}
        </select>
      </td>
      <td>{g.OwnerNodes.length ? g.OwnerNodes.join(', ') : <span className="muted">any node</span>}</td>
      <td><div className="cluster-actions">
        <button type="button" className="btn" disabled={busy || g.State === 'Online'} onClick={() => run(() => api('POST', `/cluster/groups/${enc(g.Name)}/start`), `${g.Name} is online`)}>Start</button>
        <button type="button" className="btn" disabled={busy || g.State !== 'Online'} onClick={() => run(() => api('POST', `/cluster/groups/${enc(g.Name)}/stop`), `${g.Name} is offline (saved)`)}>Stop</button>
        <select aria-label={`Move ${g.Name} to`} value={to} disabled={busy || targets.length === 0} onChange={(e) => setTarget(e.target.value)}>
          {targets.length === 0 && <option value="">no other node</option>}
          {targets.map((n) => <option key={n} value={n}>{n}</option>)}
        </select>
        <button type="button" className="btn primary" disabled={busy || g.State !== 'Online' || to === ''}
          onClick={() => run(() => api('POST', `/cluster/groups/${enc(g.Name)}/move`, { Node: to }), `${g.Name} moved live to ${to}`)}>{busy ? 'Working…' : 'Live Migrate'}</button>
        {error && <span className="error-text" role="alert">{error.message}</span>}
      </div></td>
    </tr>
  );
}
