// The wizard's last page: everything it will create, before Finish, and an API refusal
// that is about no page's field.
import type { StepProps } from './BasicSteps.tsx';
import { newDiskPath } from './model.ts';

export function SummaryStep({ f, set, ctx, problem }: StepProps) {
  const none = <span className="muted">(none)</span>;
  const disk = f.disk === 'new' ? <><span className="mono">{newDiskPath(f, ctx)}</span> (new, {f.newDiskGb} GB, dynamic)</>
    : f.disk === 'existing' ? <span className="mono">{f.existingDiskPath}</span> : 'Attach later';
  const install = f.install === 'iso' ? <>From <span className="mono">{f.isoPath}</span> (boots from DVD first)</>
    : f.install === 'network' ? 'From the network (boots from the network adapter first)' : 'Later';
  return (
    <fieldset>
      <legend>Summary</legend>
      <dl className="props">
        <dt>Name</dt><dd>{f.name || none}</dd>
        <dt>Generation</dt><dd>Generation {f.generation}</dd>
        <dt>Startup memory</dt><dd>{f.memoryMb} MB</dd>
        <dt>Processors</dt><dd>{f.cpus}</dd>
        <dt>Network</dt><dd>{f.switchName || 'Not connected'}</dd>
        <dt>Hard disk</dt><dd>{disk}</dd>
        <dt>Operating system</dt><dd>{install}</dd>
        {f.notes && <><dt>Notes</dt><dd>{f.notes}</dd></>}
      </dl>
      <label className="check-label">
        <input type="checkbox" checked={f.startAfter} onChange={(e) => set({ startAfter: e.target.checked })} /> Start the virtual machine after it is created
      </label>
      {problem && <p className="error-text" role="alert">{problem.message}</p>}
    </fieldset>
  );
}
