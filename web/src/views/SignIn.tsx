// Sign-in as a host user (user name and password, New-VMHostUser) or with the host's token
// (the built-in Administrator). Either credential goes once in a POST body; the daemon answers
// with an HttpOnly session cookie, so nothing secret is kept by the page nor put in a URL.
import { useState, type FormEvent } from 'react';
import { api, type SessionView } from '../api.ts';
import { useSubmit } from '../submit.ts';

type Mode = 'user' | 'token';

export function SignIn({ onSignedIn }: { onSignedIn: (s: SessionView) => void }) {
  const [mode, setMode] = useState<Mode>('user');
  const [userName, setUserName] = useState('');
  const [secret, setSecret] = useState('');
  const { busy, error, submit: call } = useSubmit();
  const ready = mode === 'token' ? secret.trim() !== '' : userName.trim() !== '' && secret !== '';

  const submit = (e: FormEvent) => {
    e.preventDefault();
    void call(async () => {
      const body = mode === 'token' ? { Token: secret.trim() } : { UserName: userName.trim(), Password: secret };
      const s = await api<SessionView>('POST', '/session', body);
      setSecret('');
      onSignedIn(s);
    });
  };
  const switchTo = (m: Mode) => { setMode(m); setSecret(''); };

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
        <fieldset className="signin-mode">
          <legend className="sr-only">Credential</legend>
          <label><input type="radio" name="mode" checked={mode === 'user'} onChange={() => switchTo('user')} /> User account</label>
          <label><input type="radio" name="mode" checked={mode === 'token'} onChange={() => switchTo('token')} /> Sign in with the host token</label>
        </fieldset>
        {mode === 'user' ? (
          <>
            <label htmlFor="username">User name</label>
            <input id="username" name="username" autoComplete="username" autoFocus required
              value={userName} onChange={(e) => setUserName(e.target.value)} aria-invalid={error ? true : undefined} />
            <label htmlFor="password">Password</label>
            <input id="password" name="password" type="password" autoComplete="current-password" required
              value={secret} onChange={(e) => setSecret(e.target.value)} aria-invalid={error ? true : undefined} aria-describedby="signin-help signin-error" />
            <p id="signin-help" className="muted small">An administrator creates accounts with <code>New-VMHostUser</code>.</p>
          </>
        ) : (
          <>
            <label htmlFor="token">Host token</label>
            <input id="token" name="token" type="password" autoComplete="current-password" autoFocus required
              value={secret} onChange={(e) => setSecret(e.target.value)} aria-invalid={error ? true : undefined} aria-describedby="signin-help signin-error" />
            <p id="signin-help" className="muted small">The token is in <code>&lt;data-dir&gt;/token</code> on the host (readable by its administrator only).</p>
          </>
        )}
        {error && <p id="signin-error" className="error-text" role="alert">{error.message}</p>}
        <button type="submit" className="btn primary wide" disabled={busy || !ready}>{busy ? 'Signing in…' : 'Sign in'}</button>
      </form>
    </main>
  );
}
