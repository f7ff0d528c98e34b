// Jobs a view starts (?wait=false) and follows to their end: the matching jobs now running
// (whoever started them, the CLI too) for a progress bar, and a toast when one this view
// started ends. Used by the Checkpoints pane, Export… and Import.
import { useEffect, useState } from 'react';
import type { Job } from './api.ts';
import { useJobs } from './live.ts';
import { toast } from './views/Toasts.tsx';

export function isJob(r: unknown): r is Job {
  return typeof r === 'object' && r !== null && 'PercentComplete' in r && 'State' in r && 'Id' in r;
}

/** `shown` picks the running jobs to show; `ended` runs (after the toast) when a job this view watches ends. */
export function useJobOutcomes(shown: (j: Job) => boolean, ended: (j: Job) => void): { jobs: Job[]; watch: (j: Job, what: string) => void } {
  const all = useJobs();
  const [mine, setMine] = useState<Map<string, string>>(new Map());
  useEffect(() => {
    const done = [...mine].flatMap(([id, what]) => {
      const j = all.find((x) => x.Id === id && x.State !== 'Running');
      return j ? [{ j, what }] : [];
    });
    if (done.length === 0) return;
    for (const { j, what } of done) {
      if (j.State === 'Completed') toast(`${what}: done`);
      else toast(`${what}: ${j.Error?.Message ?? j.StatusDescription}`, 'error');
    }
    setMine((m) => new Map([...m].filter(([id]) => !done.some((x) => x.j.Id === id))));
    for (const { j } of done) ended(j);
  }, [all, mine]);
  return {
    jobs: all.filter((j) => j.State === 'Running' && shown(j)),
    watch: (j, what) => setMine((m) => new Map(m).set(j.Id, what)),
  };
}
