// Live state from the daemon's event stream (GET /api/v1/events/stream, server-sent events;
// EventSource carries the session cookie). Views do not poll: each host event bumps a
// counter that their data hooks depend on, so they refetch once per change; job progress
// arrives in the stream itself.
import { useEffect, useState, useSyncExternalStore } from 'react';
import { api, type ApiError, type HostEvent, type Job } from './api.ts';

type Listener = () => void;

class LiveStore {
  tick = 0;
  connected = false;
  jobs = new Map<string, Job>();
  jobsVersion = 0;
  private readonly listeners = new Set<Listener>();
  private readonly eventListeners = new Set<(e: HostEvent) => void>();
  private source?: EventSource;
  private retry?: ReturnType<typeof setTimeout>;
  private bumpTimer?: ReturnType<typeof setTimeout>;

  start(onSignedOut: () => void): void {
    this.stop();
    void api<Job[]>('GET', '/jobs').then((list) => { for (const j of list) this.jobs.set(j.Id, j); this.jobsChanged(); }).catch(() => undefined);
    const es = new EventSource('/api/v1/events/stream');
    this.source = es;
    es.addEventListener('open', () => { this.connected = true; this.bump(true); });
    es.addEventListener('host', (m) => {
      const e = JSON.parse((m as MessageEvent<string>).data) as HostEvent;
      for (const fn of this.eventListeners) fn(e);
      this.bump(false);
    });
    es.addEventListener('job', (m) => {
      const j = JSON.parse((m as MessageEvent<string>).data) as Job;
      this.jobs.set(j.Id, j);
      this.jobsChanged();
    });
    es.addEventListener('error', () => {
      this.connected = false;
      this.emit();
      if (es.readyState !== EventSource.CLOSED) return; // the browser reconnects by itself
      // Closed for good (a non-200 answer): signed out, or the daemon went away.
      api('GET', '/session').then(() => { this.retry = setTimeout(() => this.start(onSignedOut), 3000); }, (err: ApiError) => {
        if (err.status === 401) onSignedOut();
        else this.retry = setTimeout(() => this.start(onSignedOut), 3000);
      });
    });
  }

  stop(): void {
    this.source?.close();
    this.source = undefined;
    clearTimeout(this.retry);
    this.connected = false;
  }

  /** Coalesce bursts of events (a start emits several) into one refetch. */
  private bump(now: boolean): void {
    clearTimeout(this.bumpTimer);
    const go = () => { this.tick++; this.emit(); };
    if (now) go();
    else this.bumpTimer = setTimeout(go, 80);
  }

  private jobsChanged(): void {
    this.jobsVersion++;
    this.emit();
  }

  private emit(): void {
    for (const fn of this.listeners) fn();
  }

  subscribe = (fn: Listener): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  onEvent(fn: (e: HostEvent) => void): () => void {
    this.eventListeners.add(fn);
    return () => this.eventListeners.delete(fn);
  }
}

export const live = new LiveStore();

/** A number that changes whenever the host reports a change. */
export function useLiveTick(): number {
  return useSyncExternalStore(live.subscribe, () => live.tick);
}

export function useConnected(): boolean {
  return useSyncExternalStore(live.subscribe, () => live.connected);
}

export function useJobs(): Job[] {
  const version = useSyncExternalStore(live.subscribe, () => live.jobsVersion);
  const [list, setList] = useState<Job[]>([]);
  useEffect(() => {
    setList([...live.jobs.values()].sort((a, b) => b.StartTime.localeCompare(a.StartTime)));
  }, [version]);
  return list;
}

/** Every `ms` while the page is visible: for numbers no event announces (CPU, free memory). */
export function useInterval(ms: number): number {
  const [n, setN] = useState(0);
  useEffect(() => {
    const t = setInterval(() => { if (document.visibilityState === 'visible') setN((x) => x + 1); }, ms);
    return () => clearInterval(t);
  }, [ms]);
  return n;
}

/** GET `path` now and again whenever one of `deps` changes; keeps the last good data on error. */
export function useApi<T>(path: string | null, deps: readonly unknown[]): { data?: T; error?: ApiError; reload: () => void } {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<ApiError>();
  const [n, setN] = useState(0);
  useEffect(() => {
    if (path === null) return;
    let cancelled = false;
    api<T>('GET', path).then(
      (d) => { if (!cancelled) { setData(d); setError(undefined); } },
      (e: ApiError) => { if (!cancelled) setError(e); },
    );
    return () => { cancelled = true; };
  }, [path, n, ...deps]);
  return { data, error, reload: () => setN((x) => x + 1) };
}
