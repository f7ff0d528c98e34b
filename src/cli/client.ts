// How the CLI reaches a host: -ComputerName host[:port] (default port 8470; https unless the
// host is loopback), else VMHOST_URL, else the daemon recorded in a local data dir
// (VMHOST_DATA_DIR, default <checkout>/var/host1). The local daemon gets the data dir's token
// and, when it listens with TLS, must show the certificate recorded in its daemon.json. Any
// other host gets only its own credential (credentials.ts; VMHOST_TOKEN goes with VMHOST_URL)
// and its certificate is pinned on first use (known-hosts.ts): the local token never leaves.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { VmhostError, isErrorCode } from '../common/index.ts';
import { credentialFor } from './credentials.ts';
import { cliKnownHosts } from './known-hosts.ts';
import type { Job } from '../host/index.ts';
import { exchange, send, type HttpRequest, type VerifyPeer } from '../common/pinned-http.ts';

const CHECKOUT = resolve(import.meta.dirname, '../..');
const DEFAULT_PORT = 8470;
const LOCAL_NAMES = ['localhost', '.', '127.0.0.1'];

export interface Endpoint {
  url: string;
  token: string | undefined;
  /** Judges an HTTPS peer's certificate (unused over plain HTTP). */
  verifyPeer: VerifyPeer;
}

/** Where the CLI tells of a newly pinned host (a cmdlet's ctx.warn). */
type Notice = (msg: string) => void;

function localDataDir(): string {
  return resolve(process.env.VMHOST_DATA_DIR ?? join(CHECKOUT, 'var/host1'));
}

interface LocalDaemon { url?: string; token?: string; tlsFingerprint?: string }

function readLocal(dataDir: string): LocalDaemon {
  const read = (f: string) => { try { return readFileSync(join(dataDir, f), 'utf8'); } catch { return undefined; } };
  const daemon = read('daemon.json');
  const rec = daemon ? JSON.parse(daemon) as { url: string; tlsFingerprint?: string } : undefined;
  return { url: rec?.url.replace(/\/$/, ''), tlsFingerprint: rec?.tlsFingerprint, token: read('token')?.trim() };
}

function isLoopbackName(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || /^127\./.test(host);
}

/** `-ComputerName` as a URL: host[:port] or a full http(s) URL. */
export function computerUrl(computerName: string): URL {
  let url: URL;
  try {
    url = new URL(/^https?:\/\//i.test(computerName) ? computerName : `scheme://${computerName}`);
  } catch {
    throw new VmhostError('INVALID_ARGUMENT', `-ComputerName '${computerName}' is not HOST[:PORT] or an http(s) URL`, { param: 'ComputerName' });
  }
  if (url.protocol === 'scheme:') url = new URL(`${isLoopbackName(url.hostname) ? 'http' : 'https'}://${url.host}`);
  if (!url.port) url.port = String(DEFAULT_PORT);
  return url;
}

/** The key of a host in known_hosts and credentials.json: HOST:PORT. */
export function hostKey(url: URL): string {
  return url.host.toLowerCase();
}

function local(dataDir: string, d: LocalDaemon, token: string | undefined): Endpoint {
  return {
    url: d.url!,
    token,
    verifyPeer: (fp) => {
      if (fp !== d.tlsFingerprint) {
        throw new VmhostError('TLS_CERTIFICATE_CHANGED', `the daemon at ${d.url} presented TLS certificate ${fp}, not ${d.tlsFingerprint ?? 'none'} recorded in ${join(dataDir, 'daemon.json')}: it is not this data dir's daemon`, { url: d.url, presented: fp });
      }
    },
  };
}

/** Another host: its own credential (or `token`, from VMHOST_TOKEN) and a pinned certificate. */
function other(url: URL, token: string | undefined, notice: Notice): Endpoint {
  const key = hostKey(url);
  if (url.protocol === 'http:' && !isLoopbackName(url.hostname)) {
    throw new VmhostError('INSECURE_TRANSPORT', `refusing to send a token to ${key} over plain HTTP: a remote vmhostd speaks HTTPS only (use https:// or HOST:PORT)`, { host: key });
  }
  const t = token ?? credentialFor(key)?.Token;
  if (t === undefined) {
    throw new VmhostError('CREDENTIAL_REQUIRED', `no credential stored for ${key}: run Set-VMHostCredential -ComputerName ${key} -Token <token> (the token is in <data-dir>/token on that host)`, { host: key });
  }
  return { url: url.origin, token: t, verifyPeer: (fp) => cliKnownHosts().check(key, fp, notice) };
}

export function resolveEndpoint(computerName: string | undefined, notice: Notice): Endpoint {
  const dataDir = localDataDir();
  const d = readLocal(dataDir);
  const named = computerName !== undefined && !LOCAL_NAMES.includes(computerName.toLowerCase());
  const envUrl = process.env.VMHOST_URL || undefined;
  const target = named ? computerUrl(computerName) : envUrl ? new URL(envUrl) : undefined;
  // VMHOST_TOKEN belongs to VMHOST_URL (or the local daemon), never to a -ComputerName.
  const envToken = named ? undefined : process.env.VMHOST_TOKEN;
  // The local daemon named by its address is still the local daemon.
  if (target && !(d.url && new URL(d.url).origin === target.origin)) return other(target, envToken, notice);
  if (!d.url) {
    throw new VmhostError('CONNECTION_FAILED', `no host to talk to: no daemon is recorded in ${dataDir} (start one with bin/vmhostd, or set VMHOST_URL / -ComputerName)`);
  }
  return local(dataDir, d, envToken ?? d.token);
}

export class ApiClient {
  constructor(readonly endpoint: Endpoint) {}

  private request(method: string, path: string, body?: unknown): { url: URL; req: HttpRequest } {
    const headers: Record<string, string> = {};
    if (this.endpoint.token) headers.authorization = `Bearer ${this.endpoint.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    return { url: new URL(`${this.endpoint.url}/api/v1${path}`), req: { method, headers, body: body === undefined ? undefined : JSON.stringify(body) } };
  }

  private unreachable(e: unknown): VmhostError {
    if (e instanceof VmhostError) return e;
    return new VmhostError('CONNECTION_FAILED', `cannot reach the host at ${this.endpoint.url}: ${(e as Error).message}`, { url: this.endpoint.url }, { cause: e });
  }

  private refused(status: number, text: string): VmhostError | undefined {
    if (status === 401) {
      return new VmhostError('AUTH_FAILED', `the host at ${this.endpoint.url} refused the token (set it with Set-VMHostCredential, or VMHOST_TOKEN / VMHOST_DATA_DIR)`, { url: this.endpoint.url });
    }
    if (status >= 200 && status <= 299) return undefined;
    let err: { code?: string; message?: string } = {};
    try { err = JSON.parse(text) as typeof err; } catch { /* not JSON: use the text */ }
    // A code this CLI does not know (a newer daemon) keeps its name in the context.
    const code = isErrorCode(err.code) ? err.code : 'DAEMON_ERROR';
    return new VmhostError(code, err.message ?? `${status} ${text}`, { status, daemonCode: err.code });
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const { url, req } = this.request(method, path, body);
    let res;
    try {
      res = await exchange(url, req, this.endpoint.verifyPeer);
    } catch (e) {
      throw this.unreachable(e);
    }
    const refusal = this.refused(res.status, res.text);
    if (refusal) throw refusal;
    if (res.contentType.startsWith('application/json')) return JSON.parse(res.text) as T;
    return res.text as T;
  }

  /**
   * The host's live event stream (server-sent events): `onJob` gets every job update from the
   * moment the returned promise resolves (the stream is open) until `close()`; `ended` resolves
   * when the stream is gone.
   */
  async jobUpdates(onJob: (j: Job) => void): Promise<{ close(): void; ended: Promise<void> }> {
    const { url, req } = this.request('GET', '/events/stream');
    let res;
    try {
      res = await send(url, req, this.endpoint.verifyPeer);
    } catch (e) {
      throw this.unreachable(e);
    }
    if (res.statusCode !== 200) {
      const text = await new Promise<string>((ok) => { let t = ''; res.on('data', (c: Buffer) => { t += c.toString(); }); res.on('end', () => ok(t)); res.on('error', () => ok(t)); });
      throw this.refused(res.statusCode ?? 0, text) ?? new VmhostError('DAEMON_ERROR', `the event stream answered ${res.statusCode}`, { url: this.endpoint.url });
    }
    res.setEncoding('utf8');
    let buf = '';
    res.on('data', (c: string) => {
      buf += c;
      for (let end = buf.indexOf('\n\n'); end >= 0; end = buf.indexOf('\n\n')) {
        const lines = buf.slice(0, end).split('\n');
        buf = buf.slice(end + 2);
        if (!lines.includes('event: job')) continue;
        const data = lines.find((l) => l.startsWith('data: '));
        if (data) onJob(JSON.parse(data.slice(6)) as Job);
      }
    });
    // The stream ends when the caller closes it or the daemon goes.
    const ended = new Promise<void>((ok) => { res.on('close', ok); res.on('error', () => ok()); });
    return { close: () => res.destroy(), ended };
  }
}
