// The wizard's first pages: name, generation, memory (and virtual processors).
import { bytes } from '../../format.ts';
import { FieldError, invalidProps, type Problem } from '../FieldError.tsx';
import type { WizardContext, WizardForm } from './model.ts';

export interface StepProps { f: WizardForm; set: (change: Partial<WizardForm>) => void; ctx: WizardContext; problem?: Problem }

export function NameStep({ f, set, problem }: StepProps) {
  return (
    <fieldset>
      <legend>Specify name</legend>
      <p className="muted">The name identifies the VM on this host (Get-VM -Name). It must be unique here.</p>
      <label htmlFor="vm-name">Name</label>
      <input id="vm-name" name="Name" value={f.name} onChange={(e) => set({ name: e.target.value })} autoFocus {...invalidProps('Name', problem)} />
      <FieldError param="Name" problem={problem} />
      <label htmlFor="vm-notes">Notes <span className="muted">(optional)</span></label>
      <textarea id="vm-notes" name="Notes" rows={3} value={f.notes} onChange={(e) => set({ notes: e.target.value })} {...invalidProps('Notes', problem)} />
      <FieldError param="Notes" problem={problem} />
    </fieldset>
  );
}

export function GenerationStep({ f, set, problem }: StepProps) {
  return (
    <fieldset>
      <legend>Specify generation</legend>
      <label className="radio">
        <input type="radio" name="Generation" checked={f.generation === 1} onChange={() => set({ generation: 1 })} autoFocus={f.generation === 1} />
        <span><strong>Generation 1</strong><br /><span className="muted">BIOS (SeaBIOS), i440fx chipset, IDE and legacy devices. Runs any guest.</span></span>
      </label>
      <label className="radio">
        <input type="radio" name="Generation" checked={f.generation === 2} onChange={() => set({ generation: 2 })} autoFocus={f.generation === 2} />
        <span><strong>Generation 2</strong><br /><span className="muted">UEFI (OVMF) with Secure Boot, q35 chipset, SCSI disks and DVDs, network boot from any adapter.</span></span>
      </label>
      <p className="muted small">The generation cannot be changed after the VM is created.</p>
      <FieldError param="Generation" problem={problem} />
    </fieldset>
  );
}

export function MemoryStep({ f, set, ctx, problem }: StepProps) {
  const host = ctx.host;
  return (
    <fieldset>
      <legend>Assign memory</legend>
      <label htmlFor="vm-memory">Startup memory (MB)</label>
      <input id="vm-memory" name="MemoryStartupBytes" inputMode="numeric" value={f.memoryMb}
        onChange={(e) => set({ memoryMb: e.target.value })} autoFocus {...invalidProps('MemoryStartupBytes', problem)} />
      <FieldError param="MemoryStartupBytes" problem={problem} />
      <p className="muted small">From 32 MB to 1 TB, a multiple of 2 MB.{host ? ` This host has ${bytes(host.MemoryCapacity)} of memory, ${bytes(host.FreeMemory)} free.` : ''}</p>
      <label htmlFor="vm-cpus">Number of virtual processors</label>
      <input id="vm-cpus" name="ProcessorCount" inputMode="numeric" value={f.cpus}
        onChange={(e) => set({ cpus: e.target.value })} {...invalidProps('ProcessorCount', problem)} />
      <FieldError param="ProcessorCount" problem={problem} />
      <p className="muted small">{host ? `This host has ${host.LogicalProcessorCount} logical processors.` : ''}</p>
    </fieldset>
  );
}
