// Small pieces every view uses: state badge, progress bar, confirmation dialog.
import { useEffect, useRef, type ReactNode } from 'react';
import type { Job, VmState } from '../api.ts';

export function StateBadge({ state }: { state: VmState }) {
  return <span className={`badge state-${state.toLowerCase()}`} data-state={state}>{state}</span>;
}

export function HeartbeatBadge({ value }: { value: string }) {
  const cls = value === 'OK' ? 'ok' : value === 'LostCommunication' ? 'bad' : 'muted';
  return <span className={`hb hb-${cls}`}>{value === 'LostCommunication' ? 'Lost Communication' : value === 'NoContact' ? 'No Contact' : value}</span>;
}

export function Progress({ value, label }: { value: number; label: string }) {
  return (
    <div className="progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={value} aria-label={label}>
      <div className="progress-fill" style={{ width: `${Math.max(0, Math.min(100, value))}%` }} />
    </div>
  );
}

export function JobRow({ job, showVm }: { job: Job; showVm?: boolean }) {
  return (
    <tr className={`job job-${job.State.toLowerCase()}`}>
      <td>{job.Name}</td>
      {showVm && <td>{job.VMName ?? '—'}</td>}
      <td>
        <div className="job-progress">
          <Progress value={job.PercentComplete} label={`${job.Name} progress`} />
          <span className="muted small">{job.PercentComplete} %</span>
        </div>
      </td>
      <td>{job.State}</td>
      <td className="muted">{job.Error ? <span className="error-text">{job.Error.Message}</span> : job.StatusDescription}</td>
      <td className="muted nowrap">{new Date(job.StartTime).toLocaleTimeString(undefined, { hour12: false })}</td>
    </tr>
  );
}

/** Jobs running now, each with its progress bar and status line. */
export function RunningJobs({ jobs }: { jobs: Job[] }) {
  return jobs.map((j) => (
    <div key={j.Id} className="job-progress running-job" data-job={j.Name}>
      <span className="nowrap">{j.Name}</span>
      <Progress value={j.PercentComplete} label={`${j.Name} progress`} />
      <span className="muted small">{j.PercentComplete} % · {j.StatusDescription}</span>
    </div>
  ));
}

/** A modal confirmation (native <dialog>: focus stays inside, Escape cancels). */
export function Confirm({ title, children, confirmLabel, danger, onConfirm, onCancel }: {
  title: string; children: ReactNode; confirmLabel: string; danger?: boolean; onConfirm: () => void; onCancel: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);
  return (
    <dialog ref={ref} className="dialog" aria-labelledby="confirm-title" onCancel={(e) => { e.preventDefault(); onCancel(); }}>
      <h2 id="confirm-title">{title}</h2>
      <div className="dialog-body">{children}</div>
      <div className="dialog-actions">
        <button type="button" className="btn" onClick={onCancel} autoFocus>Cancel</button>
        <button type="button" className={danger ? 'btn danger' : 'btn primary'} onClick={onConfirm}>{confirmLabel}</button>
      </div>
    </dialog>
  );
}

export function PageHeader({ title, children }: { title: ReactNode; children?: ReactNode }) {
  return (
    <div className="page-header">
      <h1>{title}</h1>
      <div className="page-actions">{children}</div>
    </div>
  );
}
