// The New Virtual Machine wizard, as in Hyper-V Manager: one page per decision (name,
// generation, memory, networking, virtual hard disk, installation options), a summary, and
// Finish on every page. Each page is checked when it is left (wizard/model.ts), so a
// mistake is named on its own page; the API checks again on Finish and its refusal goes back
// to the page of the parameter it names. Finish is New-VM, then the ISO into its DVD drive.
import { useState, type FormEvent, type ReactNode } from 'react';
import { api, runAction, type ApiError, type DvdDriveView, type HostView, type SwitchView, type VmView } from '../api.ts';
import { useApi, useLiveTick } from '../live.ts';
import { go, href } from '../router.ts';
import type { Problem } from './FieldError.tsx';
import { PageHeader } from './common.tsx';
import { toast } from './Toasts.tsx';
import { GenerationStep, MemoryStep, NameStep, type StepProps } from './wizard/BasicSteps.tsx';
import { DiskStep, InstallStep, NetworkStep } from './wizard/DeviceSteps.tsx';
import { SummaryStep } from './wizard/SummaryStep.tsx';
import { INITIAL, PARAM_STEP, STEPS, SUMMARY, apiProblem, firstProblem, newVmBody, type WizardContext, type WizardForm } from './wizard/model.ts';

const PAGES: ((p: StepProps) => ReactNode)[] = [NameStep, GenerationStep, MemoryStep, NetworkStep, DiskStep, InstallStep, SummaryStep];

export function NewVmWizard() {
  const tick = useLiveTick();
  const host = useApi<HostView>('/host', []).data;
  const vms = useApi<VmView[]>('/vms', [tick]).data;
  const switches = useApi<SwitchView[]>('/switches', [tick]).data;
  const ctx: WizardContext = { vmNames: (vms ?? []).map((v) => v.Name), switches: switches ?? [], host };
  const [step, setStep] = useState(0);
  const [f, setF] = useState<WizardForm>(INITIAL);
  const [problem, setProblem] = useState<Problem>();
  const [busy, setBusy] = useState(false);

  const set = (change: Partial<WizardForm>) => { setF({ ...f, ...change }); setProblem(undefined); };

  /** Go to page `to`: forward only past pages without a problem (stopping at the first one). */
  const goTo = (to: number): boolean => {
    const bad = to > step ? firstProblem(to, f, ctx) : undefined;
    setStep(bad ? bad.step : to);
    setProblem(bad?.problem);
    return bad === undefined;
  };

  const finish = async () => {
    const bad = firstProblem(SUMMARY, f, ctx);
    if (bad) { setStep(bad.step); setProblem(bad.problem); return; }
    setBusy(true);
    let vm: VmView;
    try {
      vm = await api<VmView>('POST', '/vms', newVmBody(f, ctx));
    } catch (e) {
      const p = apiProblem(e as ApiError);
      const page = p.param === undefined ? undefined : PARAM_STEP[p.param];
      setStep(page ?? SUMMARY);
      setProblem(page === undefined ? { message: p.message } : p);
      setBusy(false);
      return;
    }
    toast(`Created ${vm.Name}`);
    if (f.install === 'iso' && !(await insertIso(vm, f.isoPath))) { go('vms', vm.Name, 'storage'); return; }
    if (f.startAfter) await runAction(vm.Id, 'start').catch((e: ApiError) => toast(`Start ${vm.Name}: ${e.message}`, 'error'));
    go('vms', vm.Name);
  };

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (step < SUMMARY) goTo(step + 1);
    else void finish();
  };

  const Page = PAGES[step]!;
  return (
    <section aria-labelledby="wizard-title">
      <PageHeader title={<span id="wizard-title">New Virtual Machine</span>} />
      <div className="wizard">
        <ol className="wizard-steps" aria-label="Steps">
          {STEPS.map((s, i) => (
            <li key={s}>
              <button type="button" className={i === step ? 'step current' : 'step'} aria-current={i === step ? 'step' : undefined} onClick={() => goTo(i)}>
                <span className="step-no">{i + 1}</span>{s}
              </button>
            </li>
          ))}
        </ol>
        {/* noValidate: the pages' own checks speak, never the browser's. */}
        <form className="wizard-page" onSubmit={submit} noValidate>
          <Page f={f} set={set} ctx={ctx} problem={problem} />
          <div className="wizard-actions">
            <a className="btn ghost" href={href('vms')}>Cancel</a>
            <span className="spacer" />
            <button type="button" className="btn" disabled={step === 0} onClick={() => goTo(step - 1)}>&lt; Previous</button>
            {step < SUMMARY && <button type="submit" className="btn">Next &gt;</button>}
            <button type="button" className="btn primary" disabled={busy} onClick={() => void finish()}>{busy ? 'Creating…' : 'Finish'}</button>
          </div>
        </form>
      </div>
    </section>
  );
}

/** The ISO into the DVD drive New-VM -BootDevice CD added; false (and a toast) when the API refuses it. */
async function insertIso(vm: VmView, iso: string): Promise<boolean> {
  const base = `/vms/${encodeURIComponent(vm.Id)}/dvd-drives`;
  try {
    const dvd = (await api<DvdDriveView[]>('GET', base))[0];
    if (!dvd) throw new Error('the VM has no DVD drive');
    await api('PATCH', `${base}?ControllerNumber=${dvd.ControllerNumber}&ControllerLocation=${dvd.ControllerLocation}`, { Path: iso });
    return true;
  } catch (e) {
    toast(`${vm.Name} was created, but the image was not inserted: ${(e as Error).message}. Insert it from the Storage tab.`, 'error');
    return false;
  }
}
