// Move… of a running VM (Move-VM): the destination from the console's Hosts list, the user's
// credential there (handed to this host once to get the move's ticket: host/move-delegation.ts),
// and where the disks go: they stay where both hosts reach them (shared storage), or are copied
// live into a folder on the destination first (Move-VM -IncludeStorage -DestinationStoragePath).
// The move is a job: its progress (disks copied, memory copied, dirty rate, expected downtime)
// shows under the toolbar.
import { useState } from 'react';
import { whyNot } from '../actions.ts';
import { api, vmPath, type Job, type VmView } from '../api.ts';
import { useHosts } from '../hosts.ts';
import { useJobOutcomes } from '../job-watch.ts';
import { href } from '../router.ts';
import { useAct } from '../submit.ts';
import { Confirm, RunningJobs } from './common.tsx';

/** Where the disks go: undefined = they stay (shared storage), else a folder on the destination. */
type MoveTarget = { to: string; credential: string; folder: string | undefined };

function MoveDialog({ vm, onMove, onCancel }: { vm: VmView; onMove: (t: MoveTarget) => void; onCancel: () => void }) {
  const hosts = useHosts();
  const [to, setTo] = useState(hosts[0]?.Address ?? '');
  const [credential, setCredential] = useState('');
  const [copy, setCopy] = useState(false);
  const [folder, setFolder] = useState('');
  // The destination checks the folder itself (free paths, absolute); this only catches what is surely wrong.
  const folderProblem = copy && !folder.startsWith('/') ? 'An absolute folder on the destination, such as /srv/vms' : undefined;
  return (
    <Confirm title={`Move ${vm.Name}`} confirmLabel="Move" onCancel={onCancel}
      onConfirm={() => { if (to !== '' && credential !== '' && folderProblem === undefined) onMove({ to, credential, folder: copy ? folder : undefined }); }}>
      {hosts.length === 0
        ? <p>No destination yet: add one on the <a href={href('hosts')}>Hosts</a> page.</p>
        : (
          <>
            <label htmlFor="move-to">Destination host</label>
            <select id="move-to" value={to} onChange={(e) => setTo(e.target.value)}>
              {hosts.map((h) => <option key={h.Address} value={h.Address}>{h.Name} ({h.Address})</option>)}
            </select>
            <label htmlFor="move-credential">Administrator token on the destination</label>
            <input id="move-credential" type="password" autoComplete="off" value={credential} onChange={(e) => setCredential(e.target.value)} />
            <fieldset>
              <legend>Storage</legend>
              <label><input type="radio" name="move-storage" checked={!copy} onChange={() => setCopy(false)} /> Shared storage: the disks stay where both hosts reach them</label>
              <label><input type="radio" name="move-storage" checked={copy} onChange={() => setCopy(true)} /> Copy the disks to a folder on the destination</label>
              {copy && (
                <>
                  <label htmlFor="move-folder">Folder on the destination</label>
                  <input id="move-folder" value={folder} onChange={(e) => setFolder(e.target.value)} aria-invalid={folderProblem !== undefined} />
                  {folderProblem !== undefined && <p role="alert" className="small">{folderProblem}</p>}
                </>
              )}
            </fieldset>
            <p className="muted small">The VM keeps running while its memory is copied; it pauses only for the hand-over. Migration must be enabled on both hosts (Enable-VMMigration).</p>
          </>
        )}
    </Confirm>
  );
}

/** Move… in a VM's toolbar: greyed out by the state table, the move's progress below while it runs. */
export function MoveVmButton({ vm }: { vm: VmView }) {
  const [asking, setAsking] = useState(false);
  const running = useJobOutcomes((j) => j.VMId === vm.Id && j.Name === 'Move-VM', () => undefined);
  const { busy, act } = useAct(() => undefined);
  const why = whyNot('Move', vm);
  const move = ({ to, credential, folder }: MoveTarget) => {
    setAsking(false);
    const storage = folder === undefined ? {} : { IncludeStorage: true, DestinationStoragePath: folder };
    void act(`Move ${vm.Name}`, async () => running.watch(await api<Job>('POST', `${vmPath(vm.Id)}/move?wait=false`, { DestinationHost: to, Credential: credential, ...storage }), `Move ${vm.Name}`));
  };
  return (
    <>
      <button type="button" className="btn" disabled={busy || why !== undefined} title={why ?? 'Live-migrate the VM to another host (Move-VM)'} onClick={() => setAsking(true)}>Move…</button>
      {asking && <MoveDialog vm={vm} onCancel={() => setAsking(false)} onMove={move} />}
      {running.jobs.length > 0 && <div className="toolbar-jobs"><RunningJobs jobs={running.jobs} /></div>}
    </>
  );
}
