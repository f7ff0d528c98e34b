// The New Virtual Machine wizard: one page per decision, as in Hyper-V Manager. It checks
// nothing itself: the API's own validation answers (400 naming the parameter) are shown on
// the page of the field they are about, so the rules live in one place.
import { useState, type FormEvent, type ReactNode } from 'react';
import { api, runAction, type ApiError, type HostView, type VmView } from '../api.ts';
import { bytes } from '../format.ts';
import { useApi } from '../live.ts';
import { go, href } from '../router.ts';
import { useSubmit } from '../submit.ts';
import { PageHeader } from './common.tsx';
import { toast } from './Toasts.tsx';

const STEPS = ['Name', 'Generation', 'Memory', 'Processors', 'Summary'] as const;
const PARAM_STEP: Record<string, number> = { Name: 0, Notes: 0, Generation: 1, MemoryStartupBytes: 2, ProcessorCount: 3 };

export function NewVmWizard() {
  const host = useApi<HostView>('/host', []).data;
  const [step, setStep] = useState(0);
  const [name, setName] = useState('');
  const [notes, setNotes] = useState('');
  const [generation, setGeneration] = useState<1 | 2>(1);
  const [memoryMb, setMemoryMb] = useState('512');
  const [cpus, setCpus] = useState('1');
  const [startAfter, setStartAfter] = useState(false);
  const { busy, error, submit: call } = useSubmit(Object.keys(PARAM_STEP));

  const memoryBytes = Math.round(Number(memoryMb) * 1024 * 1024);
  const body = {
    Name: name,
    Generation: generation,
    MemoryStartupBytes: memoryMb.trim() === '' ? Number.NaN : memoryBytes,
    ProcessorCount: cpus.trim() === '' ? Number.NaN : Number(cpus),
    ...(notes ? { Notes: notes } : {}),
  };

  const finish = async () => {
    const failed = await call(async () => {
      const vm = await api<VmView>('POST', '/vms', body);
      toast(`Created ${vm.Name}`);
      if (startAfter) await runAction(vm.Id, 'start').catch((e: ApiError) => toast(`Start ${vm.Name}: ${e.message}`, 'error'));
      go('vms', vm.Name);
    });
    // Back to the step that holds the field the API complained about.
    const step = failed?.param === undefined ? undefined : PARAM_STEP[failed.param];
    if (step !== undefined) setStep(step);
  };

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (step < STEPS.length - 1) setStep(step + 1);
    else void finish();
  };

  const fieldError = (param: string): ReactNode =>
    error?.param === param ? <p className="error-text field-error" role="alert" id={`err-${param}`}>{error.message}</p> : null;
  const invalid = (param: string) => (error?.param === param ? { 'aria-invalid': true, 'aria-describedby': `err-${param}` } : {});

  return (
    <section aria-labelledby="wizard-title">
      <PageHeader title={<span id="wizard-title">New Virtual Machine</span>} />
      <div className="wizard">
        <ol className="wizard-steps" aria-label="Steps">
          {STEPS.map((s, i) => (
            <li key={s}>
              <button type="button" className={i === step ? 'step current' : 'step'} aria-current={i === step ? 'step' : undefined} onClick={() => setStep(i)}>
                <span className="step-no">{i + 1}</span>{s}
              </button>
            </li>
          ))}
        </ol>
        <form className="wizard-page" onSubmit={submit} noValidate>
          {step === 0 && (
            <fieldset>
              <legend>Specify name</legend>
              <p className="muted">The name identifies the VM on this host (Get-VM -Name). It must be unique here.</p>
              <label htmlFor="vm-name">Name</label>
              <input id="vm-name" name="Name" value={name} onChange={(e) => setName(e.target.value)} autoFocus {...invalid('Name')} />
              {fieldError('Name')}
              <label htmlFor="vm-notes">Notes <span className="muted">(optional)</span></label>
              <textarea id="vm-notes" name="Notes" rows={3} value={notes} onChange={(e) => setNotes(e.target.value)} {...invalid('Notes')} />
              {fieldError('Notes')}
            </fieldset>
          )}
          {step === 1 && (
            <fieldset>
              <legend>Specify generation</legend>
              <label className="radio">
                <input type="radio" name="Generation" checked={generation === 1} onChange={() => setGeneration(1)} autoFocus={generation === 1} />
                <span><strong>Generation 1</strong><br /><span className="muted">BIOS (SeaBIOS), i440fx chipset, IDE and legacy devices. Runs any guest.</span></span>
              </label>
              <label className="radio">
                <input type="radio" name="Generation" checked={generation === 2} onChange={() => setGeneration(2)} autoFocus={generation === 2} />
                <span><strong>Generation 2</strong><br /><span className="muted">UEFI (OVMF) with Secure Boot, q35 chipset, virtio devices only.</span></span>
              </label>
              <p className="muted small">The generation cannot be changed after the VM is created.</p>
              {fieldError('Generation')}
            </fieldset>
          )}
          {step === 2 && (
            <fieldset>
              <legend>Assign memory</legend>
              <label htmlFor="vm-memory">Startup memory (MB)</label>
              <input id="vm-memory" name="MemoryStartupBytes" type="number" inputMode="numeric" min={0} step={2} value={memoryMb}
                onChange={(e) => setMemoryMb(e.target.value)} autoFocus {...invalid('MemoryStartupBytes')} />
              {fieldError('MemoryStartupBytes')}
              <p className="muted small">{host ? `This host has ${bytes(host.MemoryCapacity)} of memory, ${bytes(host.FreeMemory)} free.` : ''}</p>
            </fieldset>
          )}
          {step === 3 && (
            <fieldset>
              <legend>Processors</legend>
              <label htmlFor="vm-cpus">Number of virtual processors</label>
              <input id="vm-cpus" name="ProcessorCount" type="number" inputMode="numeric" min={1} value={cpus}
                onChange={(e) => setCpus(e.target.value)} autoFocus {...invalid('ProcessorCount')} />
              {fieldError('ProcessorCount')}
              <p className="muted small">{host ? `This host has ${host.LogicalProcessorCount} logical processors.` : ''}</p>
            </fieldset>
          )}
          {step === 4 && (
            <fieldset>
              <legend>Summary</legend>
              <dl className="props">
                <dt>Name</dt><dd>{name || <span className="muted">(none)</span>}</dd>
                <dt>Generation</dt><dd>Generation {generation}</dd>
                <dt>Startup memory</dt><dd>{memoryMb} MB</dd>
                <dt>Processors</dt><dd>{cpus}</dd>
                {notes && <><dt>Notes</dt><dd>{notes}</dd></>}
              </dl>
              <label className="check-label">
                <input type="checkbox" checked={startAfter} onChange={(e) => setStartAfter(e.target.checked)} /> Start the virtual machine after it is created
              </label>
              {error && error.param === undefined && <p className="error-text" role="alert">{error.message}</p>}
            </fieldset>
          )}
          {error && error.param !== undefined && step === STEPS.length - 1 && <p className="error-text" role="alert">{error.message}</p>}
          <div className="wizard-actions">
            <a className="btn ghost" href={href('vms')}>Cancel</a>
            <span className="spacer" />
            <button type="button" className="btn" disabled={step === 0} onClick={() => setStep(step - 1)}>&lt; Previous</button>
            {step < STEPS.length - 1 && <button type="submit" className="btn">Next &gt;</button>}
            <button type="button" className="btn primary" disabled={busy} onClick={() => void finish()}>{busy ? 'Creating…' : 'Finish'}</button>
          </div>
        </form>
      </div>
    </section>
  );
}
