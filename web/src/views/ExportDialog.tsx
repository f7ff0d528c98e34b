// Export-VM and Export-VMSnapshot ask for one thing: a folder on the host. The export is
// written to <folder>/<VM name> (which must not exist yet), as Hyper-V's is; the daemon says
// so when it refuses, and the caller shows that as a toast. Export… of a VM sits in its toolbar
// (ExportVmButton), Export… of a checkpoint in the Checkpoints pane.
import { useState } from 'react';
import { whyNot } from '../actions.ts';
import { api, vmPath, type Job, type VmView } from '../api.ts';
import { useJobOutcomes } from '../job-watch.ts';
import { useAct } from '../submit.ts';
import { Confirm, RunningJobs } from './common.tsx';

export function ExportDialog({ title, onExport, onCancel }: { title: string; onExport: (path: string) => void; onCancel: () => void }) {
  const [path, setPath] = useState('');
  return (
    <Confirm title={title} confirmLabel="Export" onCancel={onCancel} onConfirm={() => { if (path.trim() !== '') onExport(path.trim()); }}>
      <label htmlFor="export-path">Folder on the host</label>
      <input id="export-path" placeholder="/srv/exports" value={path} onChange={(e) => setPath(e.target.value)} />
      <p className="muted small">The export goes to a new folder named after the VM inside it: its configuration, its disks and checkpoints. A running VM keeps running; its disks are copied as they are at one moment.</p>
    </Confirm>
  );
}

/** Export… in a VM's toolbar: greyed out by the state table, the export's progress shown below while it runs. */
export function ExportVmButton({ vm }: { vm: VmView }) {
  const [asking, setAsking] = useState(false);
  const running = useJobOutcomes((j) => j.VMId === vm.Id && j.Name === 'Export-VM', () => undefined);
  const { busy, act } = useAct(() => undefined);
  const why = whyNot('Export', vm);
  const exportTo = (path: string) => {
    setAsking(false);
    void act(`Export ${vm.Name}`, async () => running.watch(await api<Job>('POST', `${vmPath(vm.Id)}/export?wait=false`, { Path: path }), `Export ${vm.Name}`));
  };
  return (
    <>
      <button type="button" className="btn" disabled={busy || why !== undefined} title={why ?? 'Export the VM to a folder (Export-VM)'} onClick={() => setAsking(true)}>Export…</button>
      {asking && <ExportDialog title={`Export ${vm.Name}`} onCancel={() => setAsking(false)} onExport={exportTo} />}
      {running.jobs.length > 0 && <div className="toolbar-jobs"><RunningJobs jobs={running.jobs} /></div>}
    </>
  );
}
