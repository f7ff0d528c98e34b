// A VM's disks (Get-/Add-/Remove-VMHardDiskDrive), their storage QoS and the block server's
// counters for each (Measure-VM), a new disk made and attached in one go (NewDiskForm), and
// its DVD drives (DvdDrives). SCSI disks come and go while the VM runs (hot-plug); IDE disks
// need it off — the API says which, and its message is shown as it is.
import { useState, type FormEvent } from 'react';
import { api, vmPath, type DiskMetrics, type DvdDriveView, type HardDriveView, type VmView } from '../api.ts';
import { whyNot } from '../actions.ts';
import { bytes } from '../format.ts';
import { useApi, useInterval } from '../live.ts';
import { useAct } from '../submit.ts';
import { DvdDrives, slot } from './DvdDrives.tsx';
import { NewDiskForm } from './NewDiskForm.tsx';

const slotQuery = (d: { ControllerType: string; ControllerNumber: number; ControllerLocation: number }) =>
  `ControllerType=${d.ControllerType}&ControllerNumber=${d.ControllerNumber}&ControllerLocation=${d.ControllerLocation}`;

export function VmStorageTab({ vm, tick }: { vm: VmView; tick: number }) {
  const base = vmPath(vm.Id);
  const every5 = useInterval(5000);
  const { data: disks, reload } = useApi<HardDriveView[]>(`${base}/hard-drives`, [tick]);
  const { data: dvds, reload: reloadDvd } = useApi<DvdDriveView[]>(`${base}/dvd-drives`, [tick]);
  const { data: metrics } = useApi<DiskMetrics[]>(`${base}/disk-metrics`, [tick, every5]);
  const { busy, act } = useAct(() => { reload(); reloadDvd(); });
  const byPath = new Map((metrics ?? []).map((m) => [m.Path, m]));

  return (
    <div>
      <div className="card">
        <h2>Hard drives</h2>
        <table className="grid disks">
          <thead><tr><th>Controller</th><th>Path</th><th className="num">Max IOPS</th><th className="num">Min IOPS</th><th className="num">Read</th><th className="num">Written</th><th className="num">IOPS</th><th className="num">Latency</th><th /></tr></thead>
          <tbody>
            {disks?.length === 0 && <tr><td colSpan={9} className="empty">No hard drive.</td></tr>}
            {(disks ?? []).map((d) => {
              const m = byPath.get(d.Path);
              const removeWhy = whyNot(d.ControllerType === 'IDE' ? 'IdeHardDrive' : 'ScsiHardDrive', vm);
              return (
                <tr key={d.Id} data-disk={d.Path}>
                  <td className="nowrap">{slot(d)}</td>
                  <td className="mono small" title={d.NbdUri ?? undefined}>{d.Path}</td>
                  <td className="num">{d.MaximumIOPS || '—'}</td>
                  <td className="num">{d.MinimumIOPS || '—'}</td>
                  <td className="num">{m ? bytes(m.DataRead) : '—'}</td>
                  <td className="num">{m ? bytes(m.DataWritten) : '—'}</td>
                  <td className="num">{m ? Math.round(m.NormalizedIOPS) : '—'}</td>
                  <td className="num">{m ? `${m.AverageLatencyMs.toFixed(2)} ms` : '—'}</td>
                  <td><button type="button" className="btn small danger-outline" disabled={busy || removeWhy !== undefined} title={removeWhy ?? `Remove ${slot(d)}`}
                    onClick={() => void act(`Remove ${slot(d)}`, () => api('DELETE', `${base}/hard-drives?${slotQuery(d)}`))}>Remove</button></td>
                </tr>
              );
            })}
          </tbody>
        </table>
        <AddDisk vm={vm} busy={busy} onAdd={(body) => act('Add hard drive', () => api('POST', `${base}/hard-drives`, body))} />
        <NewDiskForm vm={vm} diskCount={disks?.length ?? 0} busy={busy} act={act} />
      </div>
      <DvdDrives vm={vm} dvds={dvds} busy={busy} act={act} />
    </div>
  );
}

function AddDisk({ vm, busy, onAdd }: { vm: VmView; busy: boolean; onAdd: (body: Record<string, unknown>) => Promise<boolean> }) {
  const [path, setPath] = useState('');
  const [type, setType] = useState<'IDE' | 'SCSI'>('SCSI');
  const controller = vm.Generation === 2 ? 'SCSI' : type;
  const addWhy = whyNot(controller === 'IDE' ? 'IdeHardDrive' : 'ScsiHardDrive', vm);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (await onAdd({ Path: path, ControllerType: controller })) setPath('');
  };
  return (
    <form className="inline-form" onSubmit={submit} aria-label="Add hard drive">
      <label htmlFor="disk-path">Virtual hard disk file</label>
      <input id="disk-path" className="mono" placeholder="/var/lib/vmhost/disks/data.vhdx" value={path} onChange={(e) => setPath(e.target.value)} />
      {vm.Generation === 1 && (
        <select aria-label="Controller" value={type} onChange={(e) => setType(e.target.value as 'IDE' | 'SCSI')}>
          <option value="SCSI">SCSI (hot-pluggable)</option>
          <option value="IDE">IDE (VM off)</option>
        </select>
      )}
      <button type="submit" className="btn" disabled={busy || path.trim() === '' || addWhy !== undefined} title={addWhy ?? 'Attach this disk file'}>Add hard drive</button>
      {addWhy && <span className="muted small">{addWhy}</span>}
    </form>
  );
}
