// One VM: its actions, and a tab per aspect. A feature that adds VM state (disks, NICs,
// checkpoints) adds one entry to VM_TABS.
import { useEffect, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { api, vmPath, type ApiError, type HostEvent, type IntegrationService, type VmView } from '../api.ts';
import { ACTIONS, canConnect, canSetHardware, legalIn, perform, type ActionDef } from '../actions.ts';
import { checkMemoryMb } from '../field-checks.ts';
import { bytes, percent, time, uptime } from '../format.ts';
import { useApi, useInterval, useJobs, useLiveTick } from '../live.ts';
import { go, href } from '../router.ts';
import { useSubmit, type FormError } from '../submit.ts';
import { Confirm, HeartbeatBadge, JobRow, PageHeader, StateBadge } from './common.tsx';
import { ExportVmButton } from './ExportDialog.tsx';
import { MeteringGraphs } from './MeteringGraphs.tsx';
import { MoveVmButton } from './MoveDialog.tsx';
import { toast } from './Toasts.tsx';
import { VmBootSettings } from './VmBootSettings.tsx';
import { VmCheckpointsTab } from './VmCheckpoints.tsx';
import { VmNetworkTab } from './VmNetwork.tsx';
import { VmStorageTab } from './VmStorage.tsx';

interface TabProps { vm: VmView; tick: number }
const VM_TABS: { id: string; label: string; render: (p: TabProps) => ReactNode }[] = [
  { id: 'summary', label: 'Summary', render: (p) => <Summary {...p} /> },
  // Keyed by the settings: when they change on the host (CLI, another browser) the form starts over from them.
  { id: 'settings', label: 'Settings', render: (p) => <><Settings key={[p.vm.Name, p.vm.Notes, p.vm.ProcessorCount, p.vm.MemoryStartup, p.vm.NumaNodesCount].join('|')} {...p} /><VmBootSettings {...p} /></> },
  { id: 'performance', label: 'Performance', render: (p) => <MeteringGraphs path={`${vmPath(p.vm.Id)}/history`} caption={`${p.vm.Name}'s CPU (share of the host's processors), memory, disk and network.`} /> },
  { id: 'storage', label: 'Storage', render: (p) => <VmStorageTab {...p} /> },
  { id: 'network', label: 'Network', render: (p) => <VmNetworkTab {...p} /> },
  { id: 'checkpoints', label: 'Checkpoints', render: (p) => <VmCheckpointsTab {...p} /> },
  { id: 'integration', label: 'Integration Services', render: (p) => <Integration {...p} /> },
  { id: 'serial', label: 'Serial Log', render: (p) => <SerialLog {...p} /> },
  { id: 'events', label: 'Events', render: (p) => <VmEvents {...p} /> },
  { id: 'jobs', label: 'Jobs', render: (p) => <VmJobs {...p} /> },
];

export function VmDetail({ vm: ref, tab }: { vm: string; tab?: string }) {
  const tick = useLiveTick();
  const every5 = useInterval(5000);
  const { data: vm, error } = useApi<VmView>(vmPath(ref), [tick, every5]);
  const [confirm, setConfirm] = useState<ActionDef>();
  const current = VM_TABS.find((t) => t.id === tab) ?? VM_TABS[0]!;

  if (error && !vm) return <p className="error-text" role="alert">{error.message} <a href={href('vms')}>Back to the list</a></p>;
  if (!vm) return <p className="muted" aria-busy="true">Loading…</p>;

  const run = async (a: ActionDef) => {
    setConfirm(undefined);
    try {
      await perform(a, vm);
      if (a.verb === 'delete') { toast(`Deleted ${vm.Name}`); go('vms'); }
    } catch (e) {
      toast(`${a.label} ${vm.Name}: ${(e as ApiError).message}`, 'error');
    }
  };

  return (
    <section aria-labelledby="vm-title">
      <nav className="crumbs" aria-label="Breadcrumb"><a href={href('vms')}>Virtual Machines</a> › <span>{vm.Name}</span></nav>
      <PageHeader title={<span id="vm-title">{vm.Name} <StateBadge state={vm.State} /></span>}>
        <button type="button" className="btn primary" disabled={!canConnect(vm.State)} title={canConnect(vm.State) ? 'Open the console' : `The console needs a running VM (it is ${vm.State})`}
          onClick={() => go('vms', vm.Name, 'console')}>Connect…</button>
      </PageHeader>
      <div className="toolbar" role="toolbar" aria-label={`Actions for ${vm.Name}`}>
        {ACTIONS.map((a) => {
          const ok = legalIn(a, vm.State);
          return (
            <button key={a.verb} type="button" className={a.danger ? 'btn danger-outline' : 'btn'} disabled={!ok}
              title={ok ? a.label : `Not while ${vm.State}`} onClick={() => (a.confirm ? setConfirm(a) : void run(a))}>{a.label}</button>
          );
        })}
        <ExportVmButton vm={vm} />
        <MoveVmButton vm={vm} />
      </div>
      <div className="tabs" role="tablist" aria-label="VM details">
        {VM_TABS.map((t) => (
          <a key={t.id} role="tab" aria-selected={t === current} className={t === current ? 'tab active' : 'tab'} href={href('vms', vm.Name, t.id)}>{t.label}</a>
        ))}
      </div>
      <div className="tab-panel" role="tabpanel">{current.render({ vm, tick })}</div>
      {confirm && (
        <Confirm title={`${confirm.label} ${vm.Name}?`} confirmLabel={confirm.label} danger={confirm.danger} onCancel={() => setConfirm(undefined)} onConfirm={() => void run(confirm)}>
          <p>{confirm.confirm}</p>
        </Confirm>
      )}
    </section>
  );
}

const BOOT_SOURCE: Record<VmView['BootSource'], string> = {
  Firmware: 'Its own devices, through the firmware (see Settings for the order)',
  TestGuest: 'The built-in test guest (nothing bootable attached)',
  Kernel: 'A Linux kernel given directly',
};

function Summary({ vm }: TabProps) {
  const active = vm.State !== 'Off' && vm.State !== 'Saved';
  return (
    <div className="cards">
      <div className="card">
        <h2>Status</h2>
        <dl className="props">
          <dt>State</dt><dd><StateBadge state={vm.State} /></dd>
          <dt>Status</dt><dd>{vm.Status}</dd>
          <dt>Heartbeat</dt><dd><HeartbeatBadge value={vm.Heartbeat} /></dd>
          <dt>Uptime</dt><dd className="mono">{uptime(vm.UptimeSeconds)}</dd>
          <dt>CPU usage</dt><dd>{active ? percent(vm.CPUUsage) : '—'}</dd>
          <dt>Assigned memory</dt><dd>{active ? bytes(vm.MemoryAssigned) : '—'}</dd>
          <dt>QEMU process</dt><dd>{vm.ProcessId ?? '—'}</dd>
          <dt>Resource metering</dt><dd data-metering="">{vm.ResourceMeteringEnabled ? 'Enabled (Measure-VM)' : 'Disabled'}</dd>
        </dl>
      </div>
      <div className="card">
        <h2>Configuration</h2>
        <dl className="props">
          <dt>Generation</dt><dd>{vm.Generation}</dd>
          <dt>Processors</dt><dd>{vm.ProcessorCount}</dd>
          <dt>Startup memory</dt><dd>{bytes(vm.MemoryStartup)}</dd>
          <dt>NUMA nodes</dt><dd>{vm.NumaNodesCount}</dd>
          {vm.Generation === 2 && <><dt>Secure Boot</dt><dd>{vm.SecureBoot ? 'On' : 'Off'}</dd></>}
          <dt>Boots</dt><dd>{BOOT_SOURCE[vm.BootSource]}</dd>
          <dt>Created</dt><dd>{time(vm.CreationTime)}</dd>
          <dt>Id</dt><dd className="mono small">{vm.Id}</dd>
          <dt>Path</dt><dd className="mono small">{vm.Path}</dd>
          <dt>Notes</dt><dd>{vm.Notes || <span className="muted">—</span>}</dd>
        </dl>
      </div>
    </div>
  );
}

const SETTINGS_PARAMS = ['NewVMName', 'Notes', 'ProcessorCount', 'MemoryStartupBytes', 'NumaNodes'];

function Settings({ vm }: TabProps) {
  const initial = () => ({
    name: vm.Name, notes: vm.Notes, cpus: String(vm.ProcessorCount), memoryMb: String(vm.MemoryStartup / 1048576),
    numa: String(vm.NumaNodesCount),
  });
  const [f, setF] = useState(initial);
  const { busy, error: apiError, submit, clearError } = useSubmit(SETTINGS_PARAMS);
  const [checkError, setCheckError] = useState<FormError>();
  const error = checkError ?? apiError;
  const hardware = canSetHardware(vm.State);
  const hwReason = hardware ? undefined : `Turn off the VM to change its hardware (it is ${vm.State}).`;

  const change: Record<string, unknown> = {};
  if (f.name !== vm.Name) change.NewVMName = f.name;
  if (f.notes !== vm.Notes) change.Notes = f.notes;
  if (hardware) {
    if (f.cpus !== String(vm.ProcessorCount)) change.ProcessorCount = f.cpus.trim() === '' ? Number.NaN : Number(f.cpus);
    if (f.memoryMb !== String(vm.MemoryStartup / 1048576)) change.MemoryStartupBytes = f.memoryMb.trim() === '' ? Number.NaN : Math.round(Number(f.memoryMb) * 1048576);
    if (f.numa !== String(vm.NumaNodesCount)) change.NumaNodes = f.numa.trim() === '' ? Number.NaN : Number(f.numa);
  }
  const dirty = Object.keys(change).length > 0;

  const save = (e: FormEvent) => {
    e.preventDefault();
    // The console's own check first (the browser's "nearest valid values" never shows: noValidate).
    const badMemory = 'MemoryStartupBytes' in change ? checkMemoryMb(f.memoryMb) : undefined;
    setCheckError(badMemory === undefined ? undefined : { param: 'MemoryStartupBytes', message: badMemory });
    if (badMemory !== undefined) return;
    void submit(async () => {
      const next = await api<VmView>('PATCH', vmPath(vm.Id), change);
      toast(`Saved settings of ${next.Name}`);
      if (next.Name !== vm.Name) go('vms', next.Name, 'settings');
    });
  };

  const err = (p: string) => (error?.param === p ? <p className="error-text field-error" role="alert">{error.message}</p> : null);
  return (
    <form className="settings" onSubmit={save} noValidate aria-label="General and hardware">
      <fieldset>
        <legend>General</legend>
        <label htmlFor="set-name">Name</label>
        <input id="set-name" value={f.name} onChange={(e) => setF({ ...f, name: e.target.value })} />
        {err('NewVMName')}
        <label htmlFor="set-notes">Notes</label>
        <textarea id="set-notes" rows={3} value={f.notes} onChange={(e) => setF({ ...f, notes: e.target.value })} />
        {err('Notes')}
      </fieldset>
      <fieldset disabled={!hardware} aria-describedby={hwReason ? 'hw-reason' : undefined}>
        <legend>Hardware</legend>
        {hwReason && <p id="hw-reason" className="notice">{hwReason}</p>}
        <label htmlFor="set-cpus">Virtual processors</label>
        <input id="set-cpus" inputMode="numeric" value={f.cpus} onChange={(e) => setF({ ...f, cpus: e.target.value })} />
        {err('ProcessorCount')}
        <label htmlFor="set-mem">Startup memory (MB)</label>
        <input id="set-mem" inputMode="numeric" value={f.memoryMb} onChange={(e) => setF({ ...f, memoryMb: e.target.value })} />
        {err('MemoryStartupBytes')}
        <label htmlFor="set-numa">NUMA nodes</label>
        <input id="set-numa" inputMode="numeric" value={f.numa} onChange={(e) => setF({ ...f, numa: e.target.value })} />
        {err('NumaNodes')}
      </fieldset>
      {error && error.param === undefined && <p className="error-text" role="alert">{error.message}</p>}
      <div className="form-actions">
        <button type="button" className="btn" disabled={!dirty || busy} onClick={() => { setF(initial()); clearError(); setCheckError(undefined); }}>Revert</button>
        <button type="submit" className="btn primary" disabled={!dirty || busy}>{busy ? 'Saving…' : 'Apply'}</button>
      </div>
    </form>
  );
}

function Integration({ vm, tick }: TabProps) {
  const { data, reload } = useApi<IntegrationService[]>(`${vmPath(vm.Id)}/integration-services`, [tick]);
  const set = async (s: IntegrationService, enabled: boolean) => {
    try {
      await api('PUT', `${vmPath(vm.Id)}/integration-services`, { Name: s.Name, Enabled: enabled });
    } catch (e) {
      toast(`${s.Name}: ${(e as ApiError).message}`, 'error');
    }
    reload();
  };
  const kvp = Object.entries(vm.GuestKvp);
  return (
    <div className="cards">
      <div className="card">
        <h2>Integration services</h2>
        <table className="grid">
          <thead><tr><th>Service</th><th>Enabled</th><th>Status</th></tr></thead>
          <tbody>
            {(data ?? []).map((s) => (
              <tr key={s.Name}>
                <td>{s.Name}</td>
                <td><input type="checkbox" aria-label={`${s.Name} enabled`} checked={s.Enabled} onChange={(e) => void set(s, e.target.checked)} /></td>
                <td>{s.PrimaryStatusDescription || <span className="muted">—</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div className="card">
        <h2>Key-value pairs from the guest</h2>
        {kvp.length === 0 ? <p className="muted">No data: the guest’s integration services have not reported (the VM is off, booting, or the KVP service is disabled).</p> : (
          <table className="grid kvp">
            <thead><tr><th>Name</th><th>Value</th></tr></thead>
            <tbody>{kvp.map(([k, v]) => <tr key={k}><td>{k}</td><td className="mono">{typeof v === 'string' ? v : JSON.stringify(v)}</td></tr>)}</tbody>
          </table>
        )}
      </div>
    </div>
  );
}

function SerialLog({ vm, tick }: TabProps) {
  const { data, reload } = useApi<string>(`${vmPath(vm.Id)}/console?TailBytes=65536`, [tick]);
  const pre = useRef<HTMLPreElement>(null);
  useEffect(() => { if (pre.current) pre.current.scrollTop = pre.current.scrollHeight; }, [data]);
  return (
    <div>
      <div className="toolbar">
        <button type="button" className="btn" onClick={reload}>Refresh</button>
        <span className="muted small">Last 64 KB of COM1 output{canConnect(vm.State) ? ' · for a live serial terminal open the console’s Serial tab' : ''}</span>
      </div>
      <pre ref={pre} className="terminal log" tabIndex={0} aria-label="Serial log">{stripAnsi(typeof data === 'string' ? data : '') || ' '}</pre>
    </div>
  );
}

function VmEvents({ vm, tick }: TabProps) {
  const { data } = useApi<HostEvent[]>(`/events?vm=${encodeURIComponent(vm.Id)}&limit=200`, [tick]);
  return <EventTable events={[...(data ?? [])].reverse()} />;
}

export function EventTable({ events, showVm }: { events: HostEvent[]; showVm?: boolean }) {
  if (events.length === 0) return <p className="muted">No events.</p>;
  return (
    <table className="grid events">
      <thead><tr><th>Time</th><th>Level</th>{showVm && <th>VM</th>}<th>Event</th><th>Message</th></tr></thead>
      <tbody>
        {events.map((e) => (
          <tr key={e.Seq} className={`level-${e.Level.toLowerCase()}`}>
            <td className="nowrap">{time(e.Time)}</td>
            <td><span className={`level level-${e.Level.toLowerCase()}`}>{e.Level}</span></td>
            {showVm && <td>{e.VMName ? <a href={href('vms', e.VMName)}>{e.VMName}</a> : '—'}</td>}
            <td className="mono small">{e.Code}</td>
            <td>{e.Message}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function VmJobs({ vm }: TabProps) {
  const jobs = useJobs().filter((j) => j.VMId === vm.Id);
  if (jobs.length === 0) return <p className="muted">No jobs for this VM since the daemon started.</p>;
  return (
    <table className="grid jobs">
      <thead><tr><th>Job</th><th>Progress</th><th>State</th><th>Status</th><th>Started</th></tr></thead>
      <tbody>{jobs.map((j) => <JobRow key={j.Id} job={j} />)}</tbody>
    </table>
  );
}

// eslint-disable-next-line no-control-regex -- terminal escape sequences are exactly what is removed
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]|\r(?!\n)/g;
export function stripAnsi(s: string): string {
  return s.replace(ANSI, '');
}
