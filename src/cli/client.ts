// How the CLI reaches a host: -ComputerName host:port, else VMHOST_URL, else the daemon
// recorded in a local data dir (VMHOST_DATA_DIR, default <checkout>/var/host1). The token
// comes from VMHOST_TOKEN, else from that data dir's token file.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { VmhostError, isErrorCode } from '../common/index.ts';

const CHECKOUT = resolve(import.meta.dirname, '../..');

export interface Endpoint { url: string; token: string | undefined }

function localDataDir(): string {
  return resolve(process.env.VMHOST_DATA_DIR ?? join(CHECKOUT, 'var/host1'));
}

function readLocal(dataDir: string): { url?: string; token?: string } {
  const read = (f: string) => { try { return readFileSync(join(dataDir, f), 'utf8'); } catch { return undefined; } };
  const daemon = read('daemon.json');
  return { url: daemon ? (JSON.parse(daemon) as { url: string }).url : undefined, token: read('token')?.trim() };
}

export function resolveEndpoint(computerName: string | undefined): Endpoint {
  const local = readLocal(localDataDir());
  const token = process.env.VMHOST_TOKEN ?? local.token;
  if (computerName && !['localhost', '.', '127.0.0.1'].includes(computerName.toLowerCase())) {
    const url = /^https?:\/\//.test(computerName) ? computerName : `http://${computerName}`;
    return { url: url.replace(/\/$/, ''), token };
  }
  const url = process.env.VMHOST_URL ?? local.url;
  if (!url) {
    throw new VmhostError('CONNECTION_FAILED', `no host to talk to: no daemon is recorded in ${localDataDir()} (start one with bin/vmhostd, or set VMHOST_URL / -ComputerName)`);
  }
  return { url: url.replace(/\/$/, ''), token };
}

export class ApiClient {
  constructor(readonly endpoint: Endpoint) {}

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.endpoint.token) headers.authorization = `Bearer ${this.endpoint.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(`${this.endpoint.url}/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw new VmhostError('CONNECTION_FAILED', `cannot reach the host at ${this.endpoint.url}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`, { url: this.endpoint.url }, { cause: e });
    }
    const text = await res.text();
    if (res.status === 401) {
      throw new VmhostError('AUTH_FAILED', `the host at ${this.endpoint.url} refused the token (set VMHOST_TOKEN or VMHOST_DATA_DIR)`, { url: this.endpoint.url });
    }
    if (!res.ok) {
      let err: { code?: string; message?: string } = {};
      try { err = JSON.parse(text) as typeof err; } catch { /* not JSON: use the text */ }
      // A code this CLI does not know (a newer daemon) keeps its name in the context.
      const code = isErrorCode(err.code) ? err.code : 'DAEMON_ERROR';
      throw new VmhostError(code, err.message ?? `${res.status} ${text}`, { status: res.status, daemonCode: err.code });
    }
    if (res.headers.get('content-type')?.startsWith('application/json')) return JSON.parse(text) as T;
    return text as T;
  }
}
