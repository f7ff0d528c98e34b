// Transient messages (an action failed, a VM was created), announced to screen readers.
import { useEffect, useState } from 'react';

export interface Toast { id: number; kind: 'info' | 'error'; text: string }

let next = 1;
const listeners = new Set<(t: Toast[]) => void>();
let toasts: Toast[] = [];

function set(list: Toast[]): void {
  toasts = list;
  for (const fn of listeners) fn(toasts);
}

export function toast(text: string, kind: Toast['kind'] = 'info'): void {
  const t = { id: next++, kind, text };
  set([...toasts, t].slice(-5));
  setTimeout(() => set(toasts.filter((x) => x.id !== t.id)), kind === 'error' ? 10_000 : 4000);
}

export function ToastHost() {
  const [list, setList] = useState(toasts);
  useEffect(() => {
    listeners.add(setList);
    return () => { listeners.delete(setList); };
  }, []);
  return (
    <div className="toasts" role="status" aria-live="polite">
      {list.map((t) => (
        <div key={t.id} className={`toast ${t.kind}`}>
          <span>{t.text}</span>
          <button type="button" className="btn ghost small" aria-label="Dismiss" onClick={() => set(toasts.filter((x) => x.id !== t.id))}>×</button>
        </div>
      ))}
    </div>
  );
}
