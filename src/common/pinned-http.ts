// One HTTP exchange with a daemon, over plain HTTP (the CLI to a loopback daemon) or HTTPS with
// a pinned certificate (the CLI to another host; a daemon to another daemon, always). Daemons' certificates are self-signed, so the usual chain check cannot say
// anything; instead the TLS connection is made first, `verifyPeer` judges the certificate's
// SHA-256 fingerprint, and only then is the request (with its token) written to the socket.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connectPinned, type VerifyPeer } from './pinned-tls.ts';

export interface HttpRequest {
  method: string;
  headers: Record<string, string>;
  body?: string;
  /** Given up when the peer stays silent this long (the handshake, then between bytes); none: wait. */
  timeoutMs?: number;
}
export interface HttpResponse { status: number; contentType: string; text: string }

export type { VerifyPeer };

export async function exchange(url: URL, req: HttpRequest, verifyPeer: VerifyPeer): Promise<HttpResponse> {
  const res = await send(url, req, verifyPeer);
  return new Promise((ok, fail) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => ok({ status: res.statusCode ?? 0, contentType: res.headers['content-type'] ?? '', text: Buffer.concat(chunks).toString() }));
    res.on('error', fail);
  });
}

/** The response as it arrives (an event stream): the caller reads it and destroys it when done. */
export function send(url: URL, req: HttpRequest, verifyPeer: VerifyPeer): Promise<IncomingMessage> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const tls = url.protocol === 'https:' ? connectPinned({ host, port, ALPNProtocols: ['http/1.1'], timeoutMs: req.timeoutMs }, verifyPeer) : Promise.resolve(undefined);
  return tls.then((socket) => new Promise((ok, fail) => {
    const r = httpRequest({
      host, port, method: req.method, path: url.pathname + url.search, headers: req.headers,
      ...(socket ? { createConnection: () => socket } : { agent: false }),
    }, ok);
    r.on('error', fail);
    if (req.timeoutMs !== undefined) r.setTimeout(req.timeoutMs, () => r.destroy(new Error(`no answer from ${url.host} within ${req.timeoutMs} ms`)));
    r.end(req.body);
  }));
}
