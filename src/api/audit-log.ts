// The audit log: <data-dir>/audit.jsonl (0600, append-only), one line per request that can
// change something (every method but GET and HEAD), allowed or not: when, who (the user
// the access hook identified, or the name a failed sign-in claimed), what (method, route
// and its parameters, never a body: bodies carry passwords) and how it ended.
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Role } from './roles.ts';

export interface AuditRecord {
  Time: string;
  /** null: nobody could be identified (no or a wrong credential). */
  UserName: string | null;
  Role?: Role;
  Via?: 'token' | 'session';
  Method: string;
  /** The route pattern (e.g. /api/v1/vms/:vm/stop), or the raw path when no route matched. */
  Route: string;
  /** The route's parameters, and the Name in the body when there is one (New-VM -Name …). */
  Params: Record<string, string>;
  Status: number;
  /** Denied: 401, 403 or 429; Failed: any other error status. */
  Outcome: 'Succeeded' | 'Denied' | 'Failed';
  ClientAddress: string;
}

export interface AuditQuery { Since?: string; UserName?: string; Last?: number }

export class AuditLog {
  private chain: Promise<unknown> = Promise.resolve();
  readonly path: string;

  constructor(dataDir: string) {
    this.path = join(dataDir, 'audit.jsonl');
  }

  /** Appends in request order; a failed write is reported on stderr and never fails the request it records. */
  append(r: AuditRecord): void {
    this.chain = this.chain
      .then(() => appendFile(this.path, JSON.stringify(r) + '\n', { mode: 0o600 }))
      .catch((e: Error) => process.stderr.write(`vmhostd: cannot write the audit log ${this.path}: ${e.message}\n`));
  }

  /** Resolves once every appended record is in the file. */
  settled(): Promise<unknown> {
    return this.chain;
  }

  async list(q: AuditQuery = {}): Promise<AuditRecord[]> {
    await this.settled();
    const text = await readFile(this.path, 'utf8').catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? '' : Promise.reject(e)));
    const user = q.UserName?.toLowerCase();
    const since = q.Since === undefined ? undefined : Date.parse(q.Since);
    const all = text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as AuditRecord)
      .filter((r) => (user === undefined || r.UserName?.toLowerCase() === user) && (since === undefined || Date.parse(r.Time) >= since));
    return q.Last === undefined ? all : all.slice(-q.Last);
  }
}
