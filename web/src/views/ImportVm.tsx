// Import-VM as Hyper-V Manager's Import Virtual Machine wizard does it: the export's config
// (<export>/Virtual Machines/<id>.json), the import type (register in place, copy, copy with a
// new id) with its folders, then Compare-VM's report — each incompatibility with its message,
// MessageId, source and fix, and the fields that fix the usual ones (the switch adapters
// connect to, the folder holding disks not found) — and Import-VM as a job with its progress.
// Import is offered only once the report for exactly the options shown is clean, so what the
// admin sees checked is what is imported; the daemon checks again anyway.
import { useState, type FormEvent } from 'react';
import { api, type ApiError, type Job, type SwitchView, type VmView } from '../api.ts';
import { useJobOutcomes } from '../job-watch.ts';
import { useApi } from '../live.ts';
import { go } from '../router.ts';
import { PageHeader, RunningJobs } from './common.tsx';
import { toast } from './Toasts.tsx';

/** Compare-VM's report (src/host/import-plan.ts), the fields shown. */
interface Incompatibility {
  Message: string;
  MessageId: number;
  Kind: string;
  Source: { Type: string; Id?: string; Name?: string; Path?: string };
  Fix: string;
}
interface CompatibilityReport { Path: string; Incompatibilities: Incompatibility[]; VM: { name: string; id: string } | null }

type Mode = 'register' | 'copy' | 'copy-new-id';
const MODES: { mode: Mode; label: string; help: string }[] = [
  { mode: 'register', label: 'Register the virtual machine in-place (use the existing unique ID)', help: 'The VM runs from the export’s files.' },
  { mode: 'copy', label: 'Copy the virtual machine (use the existing unique ID)', help: 'Its files are copied; the export stays as it is.' },
  { mode: 'copy-new-id', label: 'Copy the virtual machine (create a new unique ID)', help: 'A new VM: new id, device ids and dynamic MAC addresses (from this host’s pool).' },
];
/** Kinds the switch field fixes, and kinds the disk-folder field fixes. */
const SWITCH_KINDS = ['SwitchNotFound', 'SwitchAdapterMissing'];
const DISK_KINDS = ['VhdNotFound', 'VhdParentNotFound', 'VhdParentMismatch'];

export function ImportVm() {
  const { data: switches } = useApi<SwitchView[]>('/switches', []);
  const [path, setPath] = useState('');
  const [mode, setMode] = useState<Mode>('register');
  const [vhdDestination, setVhdDestination] = useState('');
  const [vmPath, setVmPath] = useState('');
  const [vhdSource, setVhdSource] = useState('');
  /** undefined: leave the adapters' switches as exported; '' connects them to nothing. */
  const [switchName, setSwitchName] = useState<string>();
  const [report, setReport] = useState<{ for: string; report: CompatibilityReport }>();
  const [busy, setBusy] = useState(false);
  const running = useJobOutcomes((j) => j.Name === 'Import-VM', (j) => {
    if (j.State !== 'Completed') return;
    void api<VmView>('GET', `/jobs/${j.Id}/result`).then((vm) => go('vms', vm.Name), () => go('vms'));
  });

  const body = {
    Path: path.trim(),
    ...(mode === 'register' ? {} : { Copy: true }),
    ...(mode === 'copy-new-id' ? { GenerateNewId: true } : {}),
    ...(mode !== 'register' && vhdDestination.trim() !== '' ? { VhdDestinationPath: vhdDestination.trim() } : {}),
    ...(mode !== 'register' && vmPath.trim() !== '' ? { VirtualMachinePath: vmPath.trim() } : {}),
    ...(vhdSource.trim() !== '' ? { VhdSourcePath: vhdSource.trim() } : {}),
    ...(switchName !== undefined ? { SwitchName: switchName } : {}),
  };
  const key = JSON.stringify(body);
  const current = report?.for === key ? report.report : undefined;
  const shown = current ?? report?.report;
  const kinds = new Set(shown?.Incompatibilities.map((i) => i.Kind) ?? []);

  const call = async (what: string, fn: () => Promise<void>) => {
    setBusy(true);
    try { await fn(); } catch (e) { toast(`${what}: ${(e as ApiError).message}`, 'error'); } finally { setBusy(false); }
  };
  const check = (e?: FormEvent) => {
    e?.preventDefault();
    void call('Compare-VM', async () => setReport({ for: key, report: await api<CompatibilityReport>('POST', '/import/compare', body) }));
  };
  const importNow = () => void call('Import-VM', async () => running.watch(await api<Job>('POST', '/import?wait=false', body), `Import ${current?.VM?.name ?? path}`));

  return (
    <section aria-labelledby="import-title">
      <PageHeader title={<span id="import-title">Import Virtual Machine</span>} />
      <form className="card" aria-label="Import options" onSubmit={check}>
        <label htmlFor="import-path">Exported configuration</label>
        <input id="import-path" placeholder="/srv/exports/web1/Virtual Machines/<id>.json" value={path} onChange={(e) => setPath(e.target.value)} />
        <fieldset aria-label="Import type">
          <legend>Import type</legend>
          {MODES.map((m) => (
            <label key={m.mode} className="check-label" title={m.help}>
              <input type="radio" name="import-mode" checked={mode === m.mode} onChange={() => setMode(m.mode)} /> {m.label}
            </label>
          ))}
        </fieldset>
        {mode !== 'register' && (
          <>
            <label htmlFor="import-vhd-dest">Folder for the virtual hard disks (optional)</label>
            <input id="import-vhd-dest" placeholder="default: <virtual machine folder or data dir>/Virtual Hard Disks" value={vhdDestination} onChange={(e) => setVhdDestination(e.target.value)} />
            <label htmlFor="import-vm-path">Virtual machine folder (optional)</label>
            <input id="import-vm-path" placeholder="default: the host's data directory" value={vmPath} onChange={(e) => setVmPath(e.target.value)} />
          </>
        )}
        <div className="toolbar">
          <button type="submit" className="btn primary" disabled={busy || path.trim() === ''}>Check compatibility</button>
        </div>
      </form>
      {shown && (
        <div className="card" role="region" aria-label="Compatibility report">
          <h2>Compatibility report{shown.VM ? ` for ${shown.VM.name}` : ''}</h2>
          {shown.Incompatibilities.length === 0 ? <p data-report="clean">No incompatibilities: the VM can be imported.</p> : (
            <ul className="plain" aria-label="Incompatibilities">
              {shown.Incompatibilities.map((i, n) => (
                <li key={n} className="incompat" data-kind={i.Kind}>
                  <div>{i.Message} <span className="muted small">({i.MessageId})</span></div>
                  <div className="muted small">{i.Source.Type}{i.Source.Name ? ` ${i.Source.Name}` : ''}{i.Source.Path ? ` · ${i.Source.Path}` : ''}</div>
                  <div className="fix small">Fix: {i.Fix}</div>
                </li>
              ))}
            </ul>
          )}
          {[...kinds].some((k) => SWITCH_KINDS.includes(k)) && (
            <>
              <label htmlFor="import-switch">Connect the adapters whose switch this host lacks to</label>
              <select id="import-switch" value={switchName ?? '-'} onChange={(e) => setSwitchName(e.target.value === '-' ? undefined : e.target.value)}>
                <option value="-">(choose)</option>
                <option value="">Not connected</option>
                {(switches ?? []).map((s) => <option key={s.Name} value={s.Name}>{s.Name} ({s.SwitchType})</option>)}
              </select>
            </>
          )}
          {[...kinds].some((k) => DISK_KINDS.includes(k)) && (
            <>
              <label htmlFor="import-vhd-source">Folder holding the disks not found</label>
              <input id="import-vhd-source" value={vhdSource} onChange={(e) => setVhdSource(e.target.value)} />
            </>
          )}
          <div className="toolbar">
            {shown.Incompatibilities.length > 0 || !current
              ? <button type="button" className="btn" disabled={busy} onClick={() => check()}>Check again</button>
              : null}
            <button type="button" className="btn primary" disabled={busy || !current || current.Incompatibilities.length > 0 || running.jobs.length > 0}
              title={current?.Incompatibilities.length === 0 ? 'Import the VM (Import-VM)' : 'Resolve the incompatibilities and check again first'} onClick={importNow}>Import</button>
          </div>
          <RunningJobs jobs={running.jobs} />
        </div>
      )}
    </section>
  );
}
