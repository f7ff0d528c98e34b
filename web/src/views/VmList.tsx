// Hyper-V Manager's VM list: live (refetched on each host event), sortable, filterable,
// with multi-select actions. CPU usage is the one number no event announces, so it is
// refreshed every 5 s while the page is visible.
import { useEffect, useMemo, useState } from 'react';
import type { ApiError, VmView } from '../api.ts';
import { ACTIONS, canConnect, legalIn, perform, type ActionDef } from '../actions.ts';
import { bytes, percent, uptime } from '../format.ts';
import { useApi, useInterval, useLiveTick } from '../live.ts';
import { go, href } from '../router.ts';
import { Confirm, HeartbeatBadge, PageHeader, StateBadge } from './common.tsx';
import { toast } from './Toasts.tsx';

type Key = 'Name' | 'State' | 'CPUUsage' | 'MemoryAssigned' | 'UptimeSeconds' | 'Heartbeat' | 'Generation';
const COLUMNS: { key: Key; label: string; numeric?: boolean }[] = [
  { key: 'Name', label: 'Name' },
  { key: 'State', label: 'State' },
  { key: 'CPUUsage', label: 'CPU Usage', numeric: true },
  { key: 'MemoryAssigned', label: 'Assigned Memory', numeric: true },
  { key: 'UptimeSeconds', label: 'Uptime', numeric: true },
  { key: 'Heartbeat', label: 'Heartbeat' },
  { key: 'Generation', label: 'Generation', numeric: true },
];

/** Seconds since the list was fetched, so uptimes tick without asking the host. */
function useSecondsSince(stamp: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  return Math.max(0, Math.floor((now - stamp) / 1000));
}

export function VmList() {
  const tick = useLiveTick();
  const every5 = useInterval(5000);
  const { data, error } = useApi<VmView[]>('/vms', [tick, every5]);
  const [fetchedAt, setFetchedAt] = useState(() => Date.now());
  useEffect(() => setFetchedAt(Date.now()), [data]);
  const since = useSecondsSince(fetchedAt);

  const [filter, setFilter] = useState('');
  const [sort, setSort] = useState<{ key: Key; dir: 1 | -1 }>({ key: 'Name', dir: 1 });
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [confirm, setConfirm] = useState<ActionDef>();

  const vms = useMemo(() => {
    const f = filter.trim().toLowerCase();
    const list = (data ?? []).filter((v) => !f || v.Name.toLowerCase().includes(f) || v.State.toLowerCase().includes(f));
    return list.sort((a, b) => {
      const x = a[sort.key];
      const y = b[sort.key];
      const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
      return c * sort.dir || a.Name.localeCompare(b.Name);
    });
  }, [data, filter, sort]);

  // Forget selected VMs that are gone (deleted, filtered out).
  const chosen = vms.filter((v) => selected.has(v.Id));
  const allChosen = vms.length > 0 && chosen.length === vms.length;

  const toggle = (id: string) => setSelected((s) => {
    const n = new Set(s);
    if (n.has(id)) n.delete(id); else n.add(id);
    return n;
  });

  const run = async (a: ActionDef) => {
    setConfirm(undefined);
    const targets = chosen.filter((v) => legalIn(a, v.State));
    const results = await Promise.allSettled(targets.map((v) => perform(a, v)));
    results.forEach((r, i) => {
      if (r.status === 'rejected') toast(`${a.label} ${targets[i]!.Name}: ${(r.reason as ApiError).message}`, 'error');
    });
    if (a.verb === 'delete') setSelected(new Set());
  };

  const reasonDisabled = (a: ActionDef): string | undefined => {
    if (chosen.length === 0) return 'Select one or more VMs';
    const bad = chosen.find((v) => !legalIn(a, v.State));
    return bad ? `${bad.Name} is ${bad.State}` : undefined;
  };

  return (
    <section aria-labelledby="vms-title">
      <PageHeader title={<span id="vms-title">Virtual Machines</span>}>
        <a className="btn primary" href={href('new')}>New VM…</a>
        <a className="btn" href={href('import')}>Import VM…</a>
      </PageHeader>

      <div className="toolbar" role="toolbar" aria-label="VM actions">
        <input type="search" className="filter" placeholder="Filter by name or state" aria-label="Filter VMs"
          value={filter} onChange={(e) => setFilter(e.target.value)} />
        <span className="toolbar-sep" />
        {ACTIONS.map((a) => {
          const why = reasonDisabled(a);
          return (
            <button key={a.verb} type="button" className={a.danger ? 'btn danger-outline' : 'btn'} disabled={why !== undefined}
              title={why ?? `${a.label} ${chosen.map((v) => v.Name).join(', ')}`}
              onClick={() => (a.confirm ? setConfirm(a) : void run(a))}>{a.label}</button>
          );
        })}
        <span className="toolbar-sep" />
        <button type="button" className="btn" disabled={chosen.length !== 1 || !canConnect(chosen[0]!.State)}
          title={chosen.length === 1 ? (canConnect(chosen[0]!.State) ? 'Open the console' : `${chosen[0]!.Name} is ${chosen[0]!.State}`) : 'Select one running VM'}
          onClick={() => go('vms', chosen[0]!.Name, 'console')}>Connect…</button>
      </div>

      {error && <p className="error-text" role="alert">Could not load VMs: {error.message}</p>}

      <table className="grid vm-grid" aria-label="Virtual machines" aria-rowcount={vms.length}>
        <thead>
          <tr>
            <th className="check">
              <input type="checkbox" aria-label="Select all VMs" checked={allChosen}
                onChange={() => setSelected(allChosen ? new Set() : new Set(vms.map((v) => v.Id)))} />
            </th>
            {COLUMNS.map((c) => (
              <th key={c.key} className={c.numeric ? 'num' : undefined} aria-sort={sort.key === c.key ? (sort.dir === 1 ? 'ascending' : 'descending') : 'none'}>
                <button type="button" className="sort" onClick={() => setSort((s) => ({ key: c.key, dir: s.key === c.key ? (s.dir === 1 ? -1 : 1) : 1 }))}>
                  {c.label}<span className="sort-mark" aria-hidden="true">{sort.key === c.key ? (sort.dir === 1 ? '▲' : '▼') : ''}</span>
                </button>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {vms.map((v) => {
            const running = v.State === 'Running';
            return (
              <tr key={v.Id} className={selected.has(v.Id) ? 'selected' : undefined} data-vm={v.Name}>
                <td className="check"><input type="checkbox" aria-label={`Select ${v.Name}`} checked={selected.has(v.Id)} onChange={() => toggle(v.Id)} /></td>
                <td><a href={href('vms', v.Name)} className="vm-link">{v.Name}</a></td>
                <td><StateBadge state={v.State} /></td>
                <td className="num">{v.State === 'Off' || v.State === 'Saved' ? '' : percent(v.CPUUsage)}</td>
                <td className="num">{v.MemoryAssigned ? bytes(v.MemoryAssigned) : ''}</td>
                <td className="num mono">{v.UptimeSeconds > 0 || running ? uptime(v.UptimeSeconds + (running ? since : 0)) : ''}</td>
                <td>{v.State === 'Off' || v.State === 'Saved' ? '' : <HeartbeatBadge value={v.Heartbeat} />}</td>
                <td className="num">{v.Generation}</td>
              </tr>
            );
          })}
          {data && vms.length === 0 && (
            <tr><td colSpan={COLUMNS.length + 1} className="empty">
              {data.length === 0 ? <>No virtual machines yet. <a href={href('new')}>Create one</a>.</> : 'No VM matches the filter.'}
            </td></tr>
          )}
        </tbody>
      </table>
      <p className="muted small">{data ? `${data.length} VM${data.length === 1 ? '' : 's'}, ${data.filter((v) => v.State === 'Running').length} running` : 'Loading…'}{chosen.length ? ` · ${chosen.length} selected` : ''}</p>

      {confirm && (
        <Confirm title={`${confirm.label} ${chosen.length === 1 ? chosen[0]!.Name : `${chosen.length} VMs`}?`} confirmLabel={confirm.label} danger={confirm.danger}
          onCancel={() => setConfirm(undefined)} onConfirm={() => void run(confirm)}>
          <p>{confirm.confirm}</p>
          <ul>{chosen.map((v) => <li key={v.Id}>{v.Name}</li>)}</ul>
        </Confirm>
      )}
    </section>
  );
}
