// The New Virtual Machine wizard's answers, the check of each page, and the New-VM request
// they make. Pages are checked as they are left (Next, a later step, Finish), so a mistake
// is named on its own page; the API's refusal on Finish goes back to the page of the
// parameter it names.
import { errorParam, type ApiError, type HostView, type SwitchView } from '../../api.ts';
import { GB, checkHostPath, checkMemoryMb, checkNewDisk, checkProcessors, checkVmName } from '../../field-checks.ts';
import type { Problem } from '../FieldError.tsx';

export const STEPS = ['Name', 'Generation', 'Memory', 'Networking', 'Virtual Hard Disk', 'Installation Options', 'Summary'] as const;
export const SUMMARY = STEPS.length - 1;

export type DiskChoice = 'new' | 'existing' | 'later';
export type InstallChoice = 'later' | 'iso' | 'network';

export interface WizardForm {
  name: string;
  notes: string;
  generation: 1 | 2;
  memoryMb: string;
  cpus: string;
  /** '' = not connected. */
  switchName: string;
  disk: DiskChoice;
  /** undefined: follows the name (defaultDiskPath) until the user edits it. */
  newDiskPath?: string;
  newDiskGb: string;
  existingDiskPath: string;
  install: InstallChoice;
  isoPath: string;
  startAfter: boolean;
}

export const INITIAL: WizardForm = {
  name: '', notes: '', generation: 1, memoryMb: '512', cpus: '1', switchName: '',
  disk: 'new', newDiskGb: '127', existingDiskPath: '', install: 'later', isoPath: '', startAfter: false,
};

/** What the pages check against: the host's VMs, switches and facts. */
export interface WizardContext { vmNames: string[]; switches: SwitchView[]; host?: HostView }

/** A new disk goes beside the host's data by default, named for the VM (Hyper-V: "<name>.vhdx"). */
export function defaultDiskPath(f: WizardForm, host: HostView | undefined): string {
  return host ? `${host.DataDir}/${f.name.trim() || 'New Virtual Machine'}.vhdx` : '';
}

export function newDiskPath(f: WizardForm, ctx: WizardContext): string {
  return f.newDiskPath ?? defaultDiskPath(f, ctx.host);
}

/** The wizard's field for each New-VM parameter the API may name in a refusal, and its page. */
export const PARAM_STEP: Record<string, number> = {
  Name: 0, Notes: 0, Generation: 1, MemoryStartupBytes: 2, ProcessorCount: 2, SwitchName: 3,
  NewVHDPath: 4, NewVHDSizeBytes: 4, VHDPath: 4, IsoPath: 5, BootDevice: 5,
};

/** The problem on page `step`, if any. */
export function checkStep(step: number, f: WizardForm, ctx: WizardContext): Problem | undefined {
  const at = (param: string, message: string | undefined): Problem | undefined => (message === undefined ? undefined : { param, message });
  switch (step) {
    case 0: return at('Name', checkVmName(f.name, ctx.vmNames));
    case 2: return at('MemoryStartupBytes', checkMemoryMb(f.memoryMb)) ?? at('ProcessorCount', checkProcessors(f.cpus, ctx.host?.LogicalProcessorCount));
    case 3: return f.switchName === '' || ctx.switches.some((s) => s.Name === f.switchName)
      ? undefined : { param: 'SwitchName', message: `The virtual switch '${f.switchName}' no longer exists.` };
    case 4: {
      if (f.disk === 'existing') return at('VHDPath', checkHostPath(f.existingDiskPath, 'virtual hard disk'));
      if (f.disk !== 'new') return undefined;
      const bad = checkNewDisk(newDiskPath(f, ctx), f.newDiskGb);
      return bad && { param: bad.param === 'Path' ? 'NewVHDPath' : 'NewVHDSizeBytes', message: bad.message };
    }
    case 5:
      if (f.install === 'iso') return at('IsoPath', checkHostPath(f.isoPath, 'image file'));
      if (f.install === 'network' && f.switchName === '') {
        return { param: 'BootDevice', message: 'To install from the network, connect the network adapter to a virtual switch on the Networking page.' };
      }
      return undefined;
    default: return undefined;
  }
}

/** The first page before `upTo` with a problem. */
export function firstProblem(upTo: number, f: WizardForm, ctx: WizardContext): { step: number; problem: Problem } | undefined {
  for (let step = 0; step < upTo; step++) {
    const problem = checkStep(step, f, ctx);
    if (problem) return { step, problem };
  }
  return undefined;
}

export function bootDevice(f: WizardForm): 'CD' | 'NetworkAdapter' | 'LegacyNetworkAdapter' | undefined {
  if (f.install === 'iso') return 'CD';
  if (f.install === 'network') return f.generation === 1 ? 'LegacyNetworkAdapter' : 'NetworkAdapter';
  return undefined;
}

/** POST /vms (New-VM); the ISO is inserted into the DVD drive this creates, once the VM exists. */
export function newVmBody(f: WizardForm, ctx: WizardContext): Record<string, unknown> {
  const boot = bootDevice(f);
  return {
    Name: f.name,
    Generation: f.generation,
    MemoryStartupBytes: Number(f.memoryMb.trim()) * 1024 * 1024,
    ProcessorCount: Number(f.cpus.trim()),
    ...(f.notes ? { Notes: f.notes } : {}),
    ...(f.switchName ? { SwitchName: f.switchName } : {}),
    ...(f.disk === 'new' ? { NewVHDPath: newDiskPath(f, ctx), NewVHDSizeBytes: Number(f.newDiskGb.trim()) * GB } : {}),
    ...(f.disk === 'existing' ? { VHDPath: f.existingDiskPath } : {}),
    ...(boot ? { BootDevice: boot } : {}),
  };
}

/** The page field an API refusal is about: the parameter it names, else what its context points at. */
export function apiProblem(e: ApiError): Problem {
  const c = e.context;
  const param = errorParam(e, Object.keys(PARAM_STEP))
    ?? (c.op === 'create-disk' ? 'NewVHDPath'
      : typeof c.switch === 'string' ? 'SwitchName'
        : e.code === 'ALREADY_EXISTS' && typeof c.vm === 'string' ? 'Name' : undefined);
  return { param, message: e.message };
}
