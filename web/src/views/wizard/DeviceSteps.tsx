// The wizard's device pages: which switch the VM's network adapter plugs into, its virtual
// hard disk, and how the operating system gets installed (an ISO in a new DVD drive, or a
// network boot).
import { href } from '../../router.ts';
import { FieldError, invalidProps } from '../FieldError.tsx';
import type { StepProps } from './BasicSteps.tsx';
import { newDiskPath, type DiskChoice, type InstallChoice } from './model.ts';

export function NetworkStep({ f, set, ctx, problem }: StepProps) {
  return (
    <fieldset>
      <legend>Configure networking</legend>
      <p className="muted">The new VM gets one network adapter. Connect it to a virtual switch now, or leave it unconnected and connect it later from the VM’s Network tab.</p>
      <label htmlFor="vm-switch">Connection</label>
      <select id="vm-switch" value={f.switchName} onChange={(e) => set({ switchName: e.target.value })} autoFocus {...invalidProps('SwitchName', problem)}>
        <option value="">Not connected</option>
        {ctx.switches.map((s) => <option key={s.Id} value={s.Name}>{s.Name} ({s.SwitchType})</option>)}
      </select>
      <FieldError param="SwitchName" problem={problem} />
      {ctx.switches.length === 0 && <p className="muted small">This host has no virtual switch yet: <a href={href('switches')}>create one</a> first to connect the VM.</p>}
    </fieldset>
  );
}

function Choice<T extends string>({ name, value, current, set, children }: { name: string; value: T; current: T; set: (v: T) => void; children: string }) {
  return (
    <label className="radio">
      <input type="radio" name={name} checked={current === value} onChange={() => set(value)} />
      <span>{children}</span>
    </label>
  );
}

export function DiskStep({ f, set, ctx, problem }: StepProps) {
  const choose = (disk: DiskChoice) => set({ disk });
  return (
    <fieldset>
      <legend>Connect virtual hard disk</legend>
      <Choice name="disk" value="new" current={f.disk} set={choose}>Create a virtual hard disk</Choice>
      {f.disk === 'new' && (
        <div className="indent">
          <label htmlFor="vm-new-disk">Path of the new disk</label>
          <input id="vm-new-disk" className="mono" value={newDiskPath(f, ctx)} onChange={(e) => set({ newDiskPath: e.target.value })} {...invalidProps('NewVHDPath', problem)} />
          <FieldError param="NewVHDPath" problem={problem} />
          <label htmlFor="vm-new-disk-size">Size (GB)</label>
          <input id="vm-new-disk-size" inputMode="numeric" value={f.newDiskGb} onChange={(e) => set({ newDiskGb: e.target.value })} {...invalidProps('NewVHDSizeBytes', problem)} />
          <FieldError param="NewVHDSizeBytes" problem={problem} />
          <p className="muted small">A dynamically expanding disk (.vhdx, or .vhd for the older format): the file grows as the guest writes. It is attached at {f.generation === 1 ? 'IDE 0:0' : 'SCSI 0:0'}.</p>
        </div>
      )}
      <Choice name="disk" value="existing" current={f.disk} set={choose}>Use an existing virtual hard disk</Choice>
      {f.disk === 'existing' && (
        <div className="indent">
          <label htmlFor="vm-existing-disk">Path of the existing disk</label>
          <input id="vm-existing-disk" className="mono" placeholder="/var/lib/vmhost/disks/server.vhdx" value={f.existingDiskPath}
            onChange={(e) => set({ existingDiskPath: e.target.value })} {...invalidProps('VHDPath', problem)} />
          <FieldError param="VHDPath" problem={problem} />
        </div>
      )}
      <Choice name="disk" value="later" current={f.disk} set={choose}>Attach a virtual hard disk later</Choice>
    </fieldset>
  );
}

export function InstallStep({ f, set, problem }: StepProps) {
  const choose = (install: InstallChoice) => set({ install });
  return (
    <fieldset>
      <legend>Installation options</legend>
      <Choice name="install" value="later" current={f.install} set={choose}>Install an operating system later</Choice>
      <Choice name="install" value="iso" current={f.install} set={choose}>Install an operating system from a bootable image file</Choice>
      {f.install === 'iso' && (
        <div className="indent">
          <label htmlFor="vm-iso">Image file (.iso)</label>
          <input id="vm-iso" className="mono" placeholder="/var/lib/vmhost/iso/debian-12.iso" value={f.isoPath} onChange={(e) => set({ isoPath: e.target.value })} {...invalidProps('IsoPath', problem)} />
          <FieldError param="IsoPath" problem={problem} />
          <p className="muted small">A DVD drive is added with this image inserted, and the VM boots from it first.
            {f.generation === 2 ? ' Secure Boot is on for generation 2: turn it off in Settings for an image not signed for UEFI Secure Boot.' : ''}</p>
        </div>
      )}
      <Choice name="install" value="network" current={f.install} set={choose}>Install an operating system from a network-based installation server</Choice>
      {f.install === 'network' && (
        <p className="indent muted small">The VM boots from its network adapter first ({f.generation === 1 ? 'a legacy network adapter, which the BIOS can boot' : 'UEFI PXE'}).</p>
      )}
      <FieldError param="BootDevice" problem={problem} />
    </fieldset>
  );
}
