// The Cluster-Aware Updating run in progress (Get-CauRun -ShowClusterNodeState), on the Failover
// Cluster page: which node is being updated, by which coordinator, and each node's step. Nothing
// is shown while no run is in progress; a run is started with Invoke-CauRun (the CLI).
import { useApi, useInterval } from '../live.ts';

/** GET /cluster/cau/run?ShowClusterNodeState=true (src/cluster/cau-admin.ts CauRunView). */
interface CauRunView {
  RunState: string; RunId?: string; CurrentNode?: string; CurrentOrchestrator?: string; Plugin?: string;
  NodeStatus?: { Node: string; Status: string; ClusterNodeState?: string; Attempts: number; VersionBefore?: string; VersionAfter?: string; Message?: string }[];
}

export function CauRunPanel() {
  const every2 = useInterval(2000);
  const run = useApi<CauRunView>('/cluster/cau/run?ShowClusterNodeState=true', [every2]);
  const r = run.data;
  if (!r || r.RunState === 'NotRunning') return null;
  return (
    <section aria-label="Cluster-Aware Updating run">
      <h2>Updating run</h2>
      <p className="muted small" role="status">
        Run {r.RunId} · {r.RunState} · updating <strong>{r.CurrentNode || '—'}</strong> · coordinated by {r.CurrentOrchestrator || '(being taken over)'} · {r.Plugin}
      </p>
      <table className="grid" aria-label="Nodes in the updating run">
        <thead><tr><th>Node</th><th>Step</th><th>Node state</th><th className="num">Attempts</th><th>Version</th><th>Message</th></tr></thead>
        <tbody>
          {(r.NodeStatus ?? []).map((n) => (
            <tr key={n.Node} data-cau-node={n.Node}>
              <td>{n.Node}</td>
              <td data-cau-step={n.Status} className={n.Status === 'Failed' ? 'error-text' : undefined}>{n.Status}</td>
              <td>{n.ClusterNodeState}</td>
              <td className="num">{n.Attempts}</td>
              <td>{n.VersionAfter ?? n.VersionBefore ?? ''}</td>
              <td className="small">{n.Message ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
