// How a cmdlet waits for a daemon job: the job is started with ?wait=false, its progress comes
// from the host's event stream (every update the job reports, none missed: the stream is open
// before the job exists) onto the progress display, and its output from Receive-Job
// (GET /jobs/:id/result, which answers when the job ends, with its error if it failed). Any
// route that answers with a job gets a progress bar this way.
import type { Job } from '../host/index.ts';
import type { ApiClient } from './client.ts';
import type { CmdletContext } from './cmdlet.ts';

/** `path` with ?wait=false (or &wait=false) added. */
function noWait(path: string): string {
  return `${path}${path.includes('?') ? '&' : '?'}wait=false`;
}

/** What a progress line calls a job: its cmdlet and VM, as Hyper-V's job captions do. */
export function jobActivity(j: Job): string {
  return j.VMName ? `${j.Name} '${j.VMName}'` : j.Name;
}

/**
 * Starts the job `method path body` answers with and returns it at once (-AsJob), or waits for
 * it with progress and returns its output (for VM actions: the VM as the job left it).
 */
export async function runJob<T>(api: ApiClient, ctx: CmdletContext, asJob: boolean, method: string, path: string, body?: unknown): Promise<T | Job> {
  if (asJob) return api.call<Job>(method, noWait(path), body);
  const seen: Job[] = [];
  let onUpdate = (j: Job): void => { seen.push(j); };
  const stream = await api.jobUpdates((j) => onUpdate(j));
  try {
    const job = await api.call<Job>(method, noWait(path), body);
    const progress = ctx.progress(jobActivity(job));
    let ended!: () => void;
    const endSeen = new Promise<void>((ok) => { ended = ok; });
    try {
      onUpdate = (j) => {
        if (j.Id !== job.Id) return;
        if (j.State === 'Running') progress.update(j.PercentComplete, j.StatusDescription);
        else ended();
      };
      for (const j of seen) onUpdate(j);
      const result = await api.call<T>('GET', `/jobs/${job.Id}/result`);
      // The daemon sends a job's last updates on the stream before it answers with the result,
      // but over another connection: read them up to the job's end before the bar goes.
      await Promise.race([endSeen, stream.ended]);
      return result;
    } finally {
      progress.done();
    }
  } finally {
    stream.close();
  }
}
