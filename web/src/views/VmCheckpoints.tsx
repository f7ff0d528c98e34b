// A VM's checkpoints, as Hyper-V Manager's Checkpoints pane shows them: the tree (each
// checkpoint under the one it was taken from, "Now" under the checkpoint the VM runs from),
// and Checkpoint, Apply (Restore-VMSnapshot), Rename and Delete (Remove-VMSnapshot, with or
// without its subtree). Checkpoint, Apply and Delete are jobs: started with ?wait=false, their
// progress shown from the event stream while they run, their outcome as a toast. Buttons grey
// out from the host's own legality table (actions.ts), with its words as their title.
import { useState, type FormEvent } from 'react';
import { api, snapshotPath, type Job, type SnapshotView, type VmView } from '../api.ts';
import { whyNot } from '../actions.ts';
import { time } from '../format.ts';
import { isJob, useJobOutcomes } from '../job-watch.ts';
import { useApi } from '../live.ts';
import { useAct } from '../submit.ts';
import { Confirm, RunningJobs } from './common.tsx';
import { ExportDialog } from './ExportDialog.tsx';

/** The jobs this pane starts, and shows while they run whoever started them (the CLI too). */
const CHECKPOINT_JOBS = ['Checkpoint-VM', 'Restore-VMSnapshot', 'Remove-VMSnapshot', 'Export-VMSnapshot'];

type Ask = { kind: 'apply' | 'delete' | 'export'; snapshot: SnapshotView };

export function VmCheckpointsTab({ vm, tick }: { vm: VmView; tick: number }) {
  const { data: snapshots, reload } = useApi<SnapshotView[]>(snapshotPath(vm.Id), [tick]);
  const [selectedId, setSelectedId] = useState<string>();
  const [ask, setAsk] = useState<Ask>();
  const [subtree, setSubtree] = useState(false);
  const running = useJobOutcomes((j) => j.VMId === vm.Id && CHECKPOINT_JOBS.includes(j.Name), reload);
  const { busy, act: call } = useAct(reload);
  const selected = snapshots?.find((s) => s.Id === selectedId);

  /** A call that answers with a job (?wait=false) is followed to its end; a plain one (Rename) is done when it answers. */
  const act = (what: string, fn: () => Promise<unknown>): Promise<boolean> => call(what, async () => {
    const r = await fn();
    if (isJob(r)) running.watch(r, what);
  });

  const applyWhy = whyNot('RestoreSnapshot', vm);
  const deleteWhy = whyNot('RemoveSnapshot', vm);
  const exportWhy = whyNot('ExportSnapshot', vm);
  const exportSnapshot = (s: SnapshotView, path: string) => {
    setAsk(undefined);
    void act(`Export '${s.Name}'`, () => api<Job>('POST', `${snapshotPath(vm.Id, s.Id)}/export?wait=false`, { Path: path }));
  };
  const confirmAsk = () => {
    if (!ask) return;
    setAsk(undefined);
    const s = ask.snapshot;
    if (ask.kind === 'apply') void act(`Apply '${s.Name}'`, () => api<Job>('POST', `${snapshotPath(vm.Id, s.Id)}/restore?wait=false`));
    else void act(`Delete '${s.Name}'`, () => api<Job>('DELETE', `${snapshotPath(vm.Id, s.Id)}?IncludeAllChildSnapshots=${subtree}&wait=false`));
  };

  return (
    <div className="card">
      <h2>Checkpoints</h2>
      <TakeCheckpoint vm={vm} busy={busy} onTake={(name) => act('Checkpoint', () => api<Job>('POST', `${snapshotPath(vm.Id)}?wait=false`, name === '' ? {} : { SnapshotName: name }))} />
      <RunningJobs jobs={running.jobs} />
      {snapshots?.length === 0 ? <p className="muted">No checkpoints. The VM runs from its own disks.</p> : (
        <CheckpointTree snapshots={snapshots ?? []} nowUnder={vm.ParentSnapshotId} selectedId={selectedId} onSelect={setSelectedId} />
      )}
      {selected && (
        <div className="ck-selected" aria-label={`Checkpoint ${selected.Name}`} role="group">
          <dl className="props">
            <dt>Name</dt><dd>{selected.Name}</dd>
            <dt>Created</dt><dd>{time(selected.CreationTime)}</dd>
            <dt>VM was</dt><dd>{selected.State}{selected.State === 'Running' || selected.State === 'Paused' ? ' (memory saved with it)' : ''}</dd>
            <dt>Disks</dt><dd className="mono small">{selected.HardDrives.join(', ') || '—'}</dd>
          </dl>
          <div className="toolbar" role="toolbar" aria-label="Checkpoint actions">
            <button type="button" className="btn" disabled={busy || applyWhy !== undefined} title={applyWhy ?? 'Go back to this checkpoint: the current state is discarded'}
              onClick={() => setAsk({ kind: 'apply', snapshot: selected })}>Apply…</button>
            <RenameCheckpoint key={selected.Id + selected.Name} snapshot={selected} busy={busy}
              onRename={(name) => act(`Rename '${selected.Name}'`, () => api('PATCH', snapshotPath(vm.Id, selected.Id), { NewName: name }))} />
            <button type="button" className="btn danger-outline" disabled={busy || deleteWhy !== undefined} title={deleteWhy ?? 'Delete this checkpoint and merge its disks'}
              onClick={() => { setSubtree(false); setAsk({ kind: 'delete', snapshot: selected }); }}>Delete…</button>
            <button type="button" className="btn" disabled={busy || exportWhy !== undefined} title={exportWhy ?? 'Export this checkpoint as a VM (Export-VMSnapshot)'}
              onClick={() => setAsk({ kind: 'export', snapshot: selected })}>Export…</button>
          </div>
        </div>
      )}
      {ask?.kind === 'export' && (
        <ExportDialog title={`Export checkpoint '${ask.snapshot.Name}'`} onCancel={() => setAsk(undefined)} onExport={(path) => exportSnapshot(ask.snapshot, path)} />
      )}
      {ask && ask.kind !== 'export' && (
        <Confirm title={ask.kind === 'apply' ? `Apply checkpoint '${ask.snapshot.Name}'?` : `Delete checkpoint '${ask.snapshot.Name}'?`}
          confirmLabel={ask.kind === 'apply' ? 'Apply' : 'Delete'} danger onCancel={() => setAsk(undefined)} onConfirm={confirmAsk}>
          {ask.kind === 'apply' ? (
            <p>{vm.Name} goes back to this checkpoint: its current disks and state are discarded{vm.State === 'Running' || vm.State === 'Paused' ? ', and it goes on running from the checkpoint’s moment' : ''}. Take a checkpoint first to keep them.</p>
          ) : (
            <>
              <p>The checkpoint’s disks are merged into the files after it; the VM’s data stays as it is now.</p>
              <label className="check-label"><input type="checkbox" checked={subtree} onChange={(e) => setSubtree(e.target.checked)} /> Delete its subtree too (every checkpoint below it)</label>
            </>
          )}
        </Confirm>
      )}
    </div>
  );
}

function TakeCheckpoint({ vm, busy, onTake }: { vm: VmView; busy: boolean; onTake: (name: string) => Promise<boolean> }) {
  const [name, setName] = useState('');
  const why = whyNot('Checkpoint', vm);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (await onTake(name.trim())) setName('');
  };
  return (
    <form className="inline-form" onSubmit={submit} aria-label="Take a checkpoint">
      <label htmlFor="ck-name">New checkpoint name</label>
      <input id="ck-name" placeholder={`${vm.Name} - (date and time)`} maxLength={100} value={name} onChange={(e) => setName(e.target.value)} />
      <button type="submit" className="btn primary" disabled={busy || why !== undefined} title={why ?? 'Take a checkpoint now'}>Checkpoint</button>
      {why && <span className="muted small">{why}</span>}
    </form>
  );
}

function RenameCheckpoint({ snapshot, busy, onRename }: { snapshot: SnapshotView; busy: boolean; onRename: (name: string) => Promise<boolean> }) {
  const [name, setName] = useState(snapshot.Name);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void onRename(name.trim());
  };
  return (
    <form className="inline-form" onSubmit={submit} aria-label="Rename the checkpoint">
      <input aria-label="New name" maxLength={100} value={name} onChange={(e) => setName(e.target.value)} />
      <button type="submit" className="btn" disabled={busy || name.trim() === '' || name.trim() === snapshot.Name}>Rename</button>
    </form>
  );
}

/** The tree, oldest first among siblings; "Now" sits under the checkpoint the VM runs from (at the top level before any). */
function CheckpointTree({ snapshots, nowUnder, selectedId, onSelect }: {
  snapshots: SnapshotView[]; nowUnder: string | null; selectedId?: string; onSelect: (id: string) => void;
}) {
  // A VM whose checkpoint is gone (a record left unreadable) shows Now at the top level.
  const nowAt = snapshots.some((s) => s.Id === nowUnder) ? nowUnder : null;
  const children = (parent: string | null) => snapshots.filter((s) => s.ParentSnapshotId === parent || (parent === null && !snapshots.some((p) => p.Id === s.ParentSnapshotId)));
  const now = <li role="treeitem" aria-selected={false} className="ck-now" data-now="">Now</li>;
  const node = (s: SnapshotView) => {
    const kids = children(s.Id);
    const hasNow = nowAt === s.Id;
    return (
      <li key={s.Id} role="treeitem" aria-selected={s.Id === selectedId} aria-expanded={kids.length > 0 || hasNow ? true : undefined} data-checkpoint={s.Name}>
        <button type="button" className={s.Id === selectedId ? 'ck-node selected' : 'ck-node'} onClick={() => onSelect(s.Id)}>
          <span className="ck-name">{s.Name}</span> <span className="muted small">{time(s.CreationTime)}</span>
        </button>
        {(kids.length > 0 || hasNow) && <ul role="group">{kids.map(node)}{hasNow && now}</ul>}
      </li>
    );
  };
  return (
    <ul role="tree" aria-label="Checkpoint tree" className="ck-tree">
      {children(null).map(node)}
      {nowAt === null && now}
    </ul>
  );
}
