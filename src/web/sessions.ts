// Browser sessions. A browser signs in once, with a user name and password or with the
// host's token (POST /api/v1/session), and from then on carries an HttpOnly, SameSite=Strict cookie holding a random session id —
// never the token — so the token is in no URL, no page script and no log line. Sessions
// live in the daemon's memory: a daemon restart signs every browser out, which is the safe
// direction. One cookie name per data dir, because cookies ignore ports and several daemons
// share 127.0.0.1 here.
import { createHash, randomBytes } from 'node:crypto';

export interface Session {
  id: string;
  /** Who signed in (the built-in 'admin' for the host's token); the role is looked up per request. */
  user: string;
  createdMs: number;
  lastSeenMs: number;
}

/** Signed out after this long without a request. */
export const IDLE_MS = 8 * 3600_000;
/** Signed out after this long whatever the activity. */
export const MAX_AGE_MS = 24 * 3600_000;
/** Oldest sessions are dropped beyond this many (a client that signs in in a loop). */
const MAX_SESSIONS = 1000;

export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  readonly cookieName: string;

  constructor(dataDir: string, private readonly now: () => number = Date.now) {
    this.cookieName = `vmhost_session_${createHash('sha256').update(dataDir).digest('hex').slice(0, 8)}`;
  }

  create(user: string): Session {
    const t = this.now();
    const s: Session = { id: randomBytes(32).toString('base64url'), user, createdMs: t, lastSeenMs: t };
    this.sessions.set(s.id, s);
    while (this.sessions.size > MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    return s;
  }

  /** The live session named by the request's Cookie header, its idle clock restarted. */
  fromCookieHeader(header: string | undefined): Session | undefined {
    const id = readCookie(header, this.cookieName);
    if (!id) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    const t = this.now();
    if (t - s.lastSeenMs > IDLE_MS || t - s.createdMs > MAX_AGE_MS) {
      this.sessions.delete(id);
      return undefined;
    }
    s.lastSeenMs = t;
    return s;
  }

  delete(id: string): void {
    this.sessions.delete(id);
  }

  /** `secure`: the request came over HTTPS, so the cookie must never travel over plain HTTP. */
  setCookie(s: Session, secure = false): string {
    return `${this.cookieName}=${s.id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${Math.floor(MAX_AGE_MS / 1000)}${secure ? '; Secure' : ''}`;
  }

  clearCookie(secure = false): string {
    return `${this.cookieName}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure ? '; Secure' : ''}`;
  }
}

export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
