// A VM's DVD drives (Get-/Add-/Set-/Remove-VMDvdDrive): insert, change or eject the image
// file — also while the VM runs, as a guest sees a disc change — and add or remove drives
// while it is off.
import { useState, type FormEvent } from 'react';
import { api, vmPath, type DvdDriveView, type VmView } from '../api.ts';
import { whyNot } from '../actions.ts';
import { checkHostPath } from '../field-checks.ts';
import { FieldError, invalidProps, type Problem } from './FieldError.tsx';

type Act = (what: string, fn: () => Promise<unknown>) => Promise<boolean>;

export const slot = (d: { ControllerType: string; ControllerNumber: number; ControllerLocation: number }) => `${d.ControllerType} ${d.ControllerNumber}:${d.ControllerLocation}`;
const dvdQuery = (d: DvdDriveView) => `ControllerNumber=${d.ControllerNumber}&ControllerLocation=${d.ControllerLocation}`;

export function DvdDrives({ vm, dvds, busy, act }: { vm: VmView; dvds: DvdDriveView[] | undefined; busy: boolean; act: Act }) {
  const base = `${vmPath(vm.Id)}/dvd-drives`;
  const addWhy = whyNot('AddDvdDrive', vm);
  return (
    <div className="card">
      <h2>DVD drives</h2>
      <table className="grid dvds">
        <thead><tr><th>Controller</th><th>Media</th><th>Image file</th><th /></tr></thead>
        <tbody>
          {dvds?.length === 0 && <tr><td colSpan={4} className="empty">No DVD drive.</td></tr>}
          {(dvds ?? []).map((d) => <DvdRow key={d.Id} vm={vm} d={d} busy={busy} act={act} base={base} />)}
        </tbody>
      </table>
      <div className="toolbar">
        <button type="button" className="btn" disabled={busy || addWhy !== undefined} title={addWhy ?? 'Add a DVD drive'}
          onClick={() => void act('Add DVD drive', () => api('POST', base, {}))}>Add DVD drive</button>
        {addWhy && <span className="muted small">{addWhy}</span>}
      </div>
    </div>
  );
}

function DvdRow({ vm, d, busy, act, base }: { vm: VmView; d: DvdDriveView; busy: boolean; act: Act; base: string }) {
  const [path, setPath] = useState('');
  const [problem, setProblem] = useState<Problem>();
  const where = slot(d);
  const param = `dvd-${where.replace(/\W/g, '-')}`;
  // Media changes with the VM off or running (the guest sees the disc change); not while it is saved, paused or between states.
  const changeWhy = whyNot('SetDvdMedia', vm);
  const removeWhy = whyNot('RemoveDvdDrive', vm);

  const insert = async (e: FormEvent) => {
    e.preventDefault();
    const bad = checkHostPath(path, 'image file');
    setProblem(bad === undefined ? undefined : { param, message: bad });
    if (bad !== undefined) return;
    if (await act(`Insert into ${where}`, () => api('PATCH', `${base}?${dvdQuery(d)}`, { Path: path }))) setPath('');
  };
  return (
    <tr data-dvd={where}>
      <td className="nowrap">{where}</td>
      <td className="mono small">{d.Path ?? <span className="muted">None</span>}</td>
      <td>
        <form className="dvd-media" onSubmit={(e) => void insert(e)} noValidate aria-label={`Media of ${where}`}>
          <input className="mono" aria-label={`Image file for ${where}`} placeholder="/var/lib/vmhost/iso/install.iso" value={path}
            onChange={(e) => { setPath(e.target.value); setProblem(undefined); }} {...invalidProps(param, problem)} />
          <button type="submit" className="btn small" disabled={busy || changeWhy !== undefined} title={changeWhy ?? 'Insert this image file'}>{d.Path ? 'Change' : 'Insert'}</button>
          <button type="button" className="btn small" disabled={busy || changeWhy !== undefined || d.Path === null} title={changeWhy ?? 'Eject the media'}
            onClick={() => void act(`Eject ${where}`, () => api('PATCH', `${base}?${dvdQuery(d)}`, { Path: null }))}>Eject</button>
        </form>
        <FieldError param={param} problem={problem} />
      </td>
      <td><button type="button" className="btn small danger-outline" disabled={busy || removeWhy !== undefined} title={removeWhy ?? `Remove ${where}`}
        onClick={() => void act(`Remove ${where}`, () => api('DELETE', `${base}?${dvdQuery(d)}`))}>Remove</button></td>
    </tr>
  );
}
