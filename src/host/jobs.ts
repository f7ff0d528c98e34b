// Long operations run as jobs: the caller gets an id at once and can poll or wait; progress
// and outcome are kept for inspection (Get-Job's shape: Id, Name, State, PercentComplete).
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { VmhostError, type ErrorCode } from '../common/index.ts';

// Queued: waiting for a slot (Move-VM beyond -MaximumVirtualMachineMigrations); Stopped: cancelled by Stop-Job.
export type JobState = 'Queued' | 'Running' | 'Completed' | 'Failed' | 'Stopped';

export interface Job {
  Id: string;
  Name: string;
  VMId?: string;
  VMName?: string;
  State: JobState;
  PercentComplete: number;
  StatusDescription: string;
  StartTime: string;
  EndTime?: string;
  Error?: { Code: string; Message: string };
}

export interface JobHandle {
  readonly id: string;
  progress(percent: number, status?: string): void;
  /** Aborted by Stop-Job (only for jobs started `cancellable`). */
  readonly signal: AbortSignal;
  /** A job started `queued` begins to run. */
  started(): void;
}

export interface JobOptions {
  /** Starts in state Queued until the work calls `started()`. */
  queued?: boolean;
  /** Stop-Job may cancel it (the work watches `signal` and fails with JOB_CANCELLED). */
  cancellable?: boolean;
}

const KEEP = 500;

export class JobManager {
  private readonly jobs = new Map<string, Job>();
  /** Each job's outcome, kept as long as its record (Receive-Job). */
  private readonly results = new Map<string, Promise<unknown>>();
  private readonly emitter = new EventEmitter();
  private readonly cancels = new Map<string, AbortController>();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  /** Start `work` as a job; returns the job record and a promise of its result. */
  run<T>(name: string, vm: { id: string; name: string } | undefined, work: (h: JobHandle) => Promise<T>, opts: JobOptions = {}): { job: Job; result: Promise<T> } {
    const job: Job = {
      Id: randomUUID(), Name: name, VMId: vm?.id, VMName: vm?.name, State: opts.queued ? 'Queued' : 'Running',
      PercentComplete: 0, StatusDescription: opts.queued ? 'Queued' : 'Running', StartTime: new Date().toISOString(),
    };
    const cancel = new AbortController();
    if (opts.cancellable) this.cancels.set(job.Id, cancel);
    this.jobs.set(job.Id, job);
    this.trim();
    const handle: JobHandle = {
      id: job.Id,
      progress: (p, s) => {
        job.PercentComplete = Math.max(0, Math.min(100, Math.round(p)));
        if (s) job.StatusDescription = s;
        this.emitter.emit('job', job);
      },
      signal: cancel.signal,
      started: () => {
        if (job.State !== 'Queued') return;
        Object.assign(job, { State: 'Running', StatusDescription: 'Running' });
        this.emitter.emit('job', job);
      },
    };
    const result = work(handle).finally(() => this.cancels.delete(job.Id)).then(
      (v) => {
        Object.assign(job, { State: 'Completed', PercentComplete: 100, StatusDescription: 'Completed', EndTime: new Date().toISOString() });
        this.emitter.emit('job', job);
        return v;
      },
      (e: unknown) => {
        const err = e instanceof VmhostError ? { Code: e.code, Message: e.message } : { Code: 'INTERNAL' satisfies ErrorCode, Message: String((e as Error)?.message ?? e) };
        Object.assign(job, { State: err.Code === 'JOB_CANCELLED' ? 'Stopped' : 'Failed', StatusDescription: err.Message, Error: err, EndTime: new Date().toISOString() });
        this.emitter.emit('job', job);
        throw e;
      },
    );
    // Nobody may await a job started with -AsJob; its failure is recorded, not unhandled.
    result.catch(() => undefined);
    this.results.set(job.Id, result);
    return { job, result };
  }

  /** Stop-Job: cancel a queued or running job that allows it; its own work decides what undoing means. */
  stop(id: string): Job {
    const job = this.jobs.get(id);
    if (!job) throw new VmhostError('NOT_FOUND', `No job with id ${id}`, { job: id });
    const c = this.cancels.get(id);
    if (!c) {
      if (job.State !== 'Queued' && job.State !== 'Running') return job;
      throw new VmhostError('INVALID_STATE', `Job ${id} (${job.Name}) cannot be stopped`, { job: id });
    }
    c.abort();
    return job;
  }

  get(id: string): Job | undefined {
    return this.jobs.get(id);
  }

  /** Receive-Job -Wait: the job's result once it ends (its error, if it failed); undefined for an unknown job. */
  result(id: string): Promise<unknown> | undefined {
    return this.results.get(id);
  }

  list(): Job[] {
    return [...this.jobs.values()];
  }

  subscribe(fn: (j: Job) => void): () => void {
    this.emitter.on('job', fn);
    return () => this.emitter.off('job', fn);
  }

  private trim(): void {
    for (const [id, j] of this.jobs) {
      if (this.jobs.size <= KEEP) break;
      if (j.State !== 'Running') {
        this.jobs.delete(id);
        this.results.delete(id);
      }
    }
  }
}
