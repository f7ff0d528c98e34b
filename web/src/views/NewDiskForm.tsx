// "New disk" on a VM's Storage tab: a new dynamic VHDX/VHD file made on the host (POST
// /vhd, New-VHD -Dynamic) and attached at once (POST .../hard-drives; SCSI hot-plugs into a
// running VM, IDE needs it off). The path follows the VM's name until it is edited.
import { useState, type FormEvent } from 'react';
import { api, vmPath, type HostView, type VmView } from '../api.ts';
import { GB, checkNewDisk } from '../field-checks.ts';
import { useApi } from '../live.ts';
import { FieldError, invalidProps, type Problem } from './FieldError.tsx';

type Act = (what: string, fn: () => Promise<unknown>) => Promise<boolean>;

export function NewDiskForm({ vm, diskCount, busy, act }: { vm: VmView; diskCount: number; busy: boolean; act: Act }) {
  const host = useApi<HostView>('/host', []).data;
  const [path, setPath] = useState<string>();
  const [sizeGb, setSizeGb] = useState('16');
  const [type, setType] = useState<'IDE' | 'SCSI'>('SCSI');
  const [problem, setProblem] = useState<Problem>();
  const shown = path ?? (host ? `${host.DataDir}/${vm.Name}-disk${diskCount + 1}.vhdx` : '');

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const bad = checkNewDisk(shown, sizeGb);
    setProblem(bad && { param: `new-disk-${bad.param}`, message: bad.message });
    if (bad) return;
    const created = await act('New hard drive', async () => {
      await api('POST', '/vhd', { Path: shown, SizeBytes: Number(sizeGb.trim()) * GB });
      await api('POST', `${vmPath(vm.Id)}/hard-drives`, { Path: shown, ControllerType: vm.Generation === 2 ? 'SCSI' : type }).catch((err: Error) => {
        throw new Error(`${shown} was created but not attached: ${err.message}`);
      });
    });
    if (created) setPath(undefined);
  };
  const edit = (change: () => void) => { change(); setProblem(undefined); };
  return (
    <form className="inline-form" onSubmit={(e) => void submit(e)} noValidate aria-label="New hard drive">
      <label htmlFor="new-disk-path">Path of the new disk</label>
      <input id="new-disk-path" className="mono" value={shown} onChange={(e) => edit(() => setPath(e.target.value))} {...invalidProps('new-disk-Path', problem)} />
      <label htmlFor="new-disk-size">Size (GB)</label>
      <input id="new-disk-size" className="size" inputMode="numeric" value={sizeGb} onChange={(e) => edit(() => setSizeGb(e.target.value))} {...invalidProps('new-disk-Size', problem)} />
      {vm.Generation === 1 && (
        <select aria-label="Controller of the new disk" value={type} onChange={(e) => setType(e.target.value as 'IDE' | 'SCSI')}>
          <option value="SCSI">SCSI (hot-pluggable)</option>
          <option value="IDE">IDE (VM off)</option>
        </select>
      )}
      <button type="submit" className="btn" disabled={busy}>Create and attach</button>
      <FieldError param="new-disk-Path" problem={problem} />
      <FieldError param="new-disk-Size" problem={problem} />
    </form>
  );
}
