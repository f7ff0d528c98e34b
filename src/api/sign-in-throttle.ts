// Password guessing is slowed per user name and client address: after FREE_FAILURES wrong
// passwords in a row the next attempt must wait 1 s, and each further failure doubles the
// wait (capped at MAX_WAIT_MS); until then every attempt, a right password included,
// answers 429 TOO_MANY_SIGN_INS with Retry-After. A success clears the count.
import { VmhostError } from '../common/index.ts';

export const FREE_FAILURES = 5;
const MAX_WAIT_MS = 15 * 60_000;
/** Oldest entries are dropped beyond this many (a client cycling through names). */
const MAX_ENTRIES = 10_000;

interface Entry { failures: number; blockedUntilMs: number }

export class SignInThrottle {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Throws TOO_MANY_SIGN_INS while this user+address must wait. */
  check(user: string, address: string): void {
    const e = this.entries.get(key(user, address));
    const waitMs = (e?.blockedUntilMs ?? 0) - this.now();
    if (waitMs > 0) {
      throw new VmhostError('TOO_MANY_SIGN_INS', `Too many failed sign-ins for '${user}' from ${address}: try again in ${Math.ceil(waitMs / 1000)} s`,
        { user, address, retryAfterSeconds: Math.ceil(waitMs / 1000) });
    }
  }

  failed(user: string, address: string): void {
    const k = key(user, address);
    const e = this.entries.get(k) ?? { failures: 0, blockedUntilMs: 0 };
    e.failures++;
    if (e.failures >= FREE_FAILURES) e.blockedUntilMs = this.now() + Math.min(MAX_WAIT_MS, 1000 * 2 ** (e.failures - FREE_FAILURES));
    this.entries.delete(k); // re-inserted last: the map's order is least recently failed first
    this.entries.set(k, e);
    while (this.entries.size > MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
  }

  succeeded(user: string, address: string): void {
    this.entries.delete(key(user, address));
  }
}

function key(user: string, address: string): string {
  return `${user.toLowerCase()}\n${address}`;
}
