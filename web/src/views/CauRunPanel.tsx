// The Cluster-Aware Updating run in progress (Get-CauRun -ShowClusterNodeState), on the Failover
// Cluster page: which node is being updated, by which coordinator, and each node's step; and the
// self-updating role's schedule when it is added (Get-CauClusterRole). Nothing is shown while
// neither is there; a run is started with Invoke-CauRun, the role added with Add-CauClusterRole (the CLI).
import { useApi, useInterval } from '../live.ts';

/** GET /cluster/cau/run?ShowClusterNodeState=true (src/cluster/cau-admin.ts CauRunView). */
interface CauRunView {
  RunState: string; RunId?: string; CurrentNode?: string; CurrentOrchestrator?: string; Plugin?: string;
  NodeStatus?: { Node: string; Status: string; ClusterNodeState?: string; Attempts: number; VersionBefore?: string; VersionAfter?: string; Message?: string }[];
}

/** GET /cluster/cau/role (src/cluster/cau-role.ts CauRoleView); 404 while no role is added. */
interface CauRoleView { Status: string; DaysOfWeek: string[]; WeeksOfMonth?: number[]; IntervalWeeks?: number; StartDate: string; NextRun?: string; LastRunTime?: string; LastMessage?: string }

function RoleSchedule() {
  const every30 = useInterval(30_000);
  const role = useApi<CauRoleView>('/cluster/cau/role', [every30]);
  const s = role.error ? undefined : role.data; // useApi keeps the last data on error: a removed role answers 404
  if (!s) return null;
  const which = s.WeeksOfMonth ? ` (week ${s.WeeksOfMonth.map((w) => (w === 5 ? 'last' : String(w))).join(', ')} of the month)` : s.IntervalWeeks ? ` (every ${s.IntervalWeeks} weeks)` : '';
  return (
    <p className="muted small" data-cau-role={s.Status}>
      Self-updating role {s.Status}: {s.DaysOfWeek.join(', ')}{which} at {s.StartDate.slice(11, 16)} UTC
      {s.NextRun ? ` · next run ${s.NextRun}` : ''}{s.LastRunTime ? ` · last ${s.LastRunTime}` : ''}{s.LastMessage ? ` · ${s.LastMessage}` : ''}
    </p>
  );
}

export function CauRunPanel() {
  const every2 = useInterval(2000);
  const run = useApi<CauRunView>('/cluster/cau/run?ShowClusterNodeState=true', [every2]);
  const r = run.data;
  if (!r || r.RunState === 'NotRunning') return <RoleSchedule />;
  return (
    <section aria-label="Cluster-Aware Updating run">
      <h2>Updating run</h2>
      <RoleSchedule />
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
