// One way for a form to call the API: busy while the call runs, and the API's own error kept
// with the parameter it names (so the form can show it on that field).
import { useState } from 'react';
import { errorParam, type ApiError } from './api.ts';
import { toast } from './views/Toasts.tsx';

export interface FormError { param?: string; message: string }

export function useSubmit(params: readonly string[] = []) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<FormError>();
  /** Runs `fn`; on an API error keeps it and returns it (else undefined). */
  const submit = async (fn: () => Promise<void>): Promise<FormError | undefined> => {
    setBusy(true);
    setError(undefined);
    try {
      await fn();
      return undefined;
    } catch (e) {
      const ae = e as ApiError;
      const fe = { param: errorParam(ae, params), message: ae.message };
      setError(fe);
      return fe;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, submit, clearError: () => setError(undefined) };
}

/**
 * A pane's buttons: busy while one action runs, an API refusal shown as a toast naming `what`,
 * `after` (the pane's refetch) however it ends; `act` answers whether it went through.
 */
export function useAct(after: () => void) {
  const [busy, setBusy] = useState(false);
  const act = async (what: string, fn: () => Promise<unknown>): Promise<boolean> => {
    setBusy(true);
    try {
      await fn();
      return true;
    } catch (e) {
      toast(`${what}: ${(e as ApiError).message}`, 'error');
      return false;
    } finally {
      setBusy(false);
      after();
    }
  };
  return { busy, act };
}
