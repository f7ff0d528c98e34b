// Sign-in with the host's token. The token goes once in a POST body; the daemon answers with
// an HttpOnly session cookie, so the token is never kept by the page nor put in a URL.
import { useState, type FormEvent } from 'react';
import { api, type SessionView } from '../api.ts';
import { useSubmit } from '../submit.ts';

export function SignIn({ onSignedIn }: { onSignedIn: (s: SessionView) => void }) {
  const [token, setToken] = useState('');
  const { busy, error, submit: call } = useSubmit();

  const submit = (e: FormEvent) => {
    e.preventDefault();
    void call(async () => {
      const s = await api<SessionView>('POST', '/session', { Token: token.trim() });
      setToken('');
      onSignedIn(s);
    });
  };

  return (
    <main className="signin">
      <form className="signin-card" onSubmit={submit} aria-labelledby="signin-title">
        <div className="signin-brand">
          <img src="/favicon.svg" alt="" width={40} height={40} />
          <div>
            <h1 id="signin-title">vmhost Manager</h1>
            <p className="muted">Sign in to manage this host’s virtual machines</p>
          </div>
        </div>
        <label htmlFor="token">Host token</label>
        <input id="token" name="token" type="password" autoComplete="current-password" autoFocus required
          value={token} onChange={(e) => setToken(e.target.value)} aria-invalid={error ? true : undefined} aria-describedby="token-help token-error" />
        <p id="token-help" className="muted small">The token is in <code>&lt;data-dir&gt;/token</code> on the host (readable by its administrator only).</p>
        {error && <p id="token-error" className="error-text" role="alert">{error.message}</p>}
        <button type="submit" className="btn primary wide" disabled={busy || !token.trim()}>{busy ? 'Signing in…' : 'Sign in'}</button>
      </form>
    </main>
  );
}
