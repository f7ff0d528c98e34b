// Get-Job: every job since the daemon started, progress live from the event stream.
import { useJobs } from '../live.ts';
import { JobRow, PageHeader } from './common.tsx';

export function JobsView() {
  const jobs = useJobs();
  return (
    <section aria-labelledby="jobs-title">
      <PageHeader title={<span id="jobs-title">Jobs</span>} />
      {jobs.length === 0 ? <p className="muted">No jobs since the daemon started.</p> : (
        <table className="grid jobs">
          <thead><tr><th>Job</th><th>VM</th><th>Progress</th><th>State</th><th>Status</th><th>Started</th></tr></thead>
          <tbody>{jobs.map((j) => <JobRow key={j.Id} job={j} showVm />)}</tbody>
        </table>
      )}
    </section>
  );
}
