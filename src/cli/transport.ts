// One HTTP exchange with a daemon, over plain HTTP (loopback) or HTTPS with a pinned
// certificate. Daemons' certificates are self-signed, so the usual chain check cannot say
// anything; instead the TLS connection is made first, `verifyPeer` judges the certificate's
// SHA-256 fingerprint, and only then is the request (with its token) written to the socket.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';

export interface HttpRequest { method: string; headers: Record<string, string>; body?: string }
export interface HttpResponse { status: number; contentType: string; text: string }

/** Throws to refuse the peer, whose certificate has `fingerprint` (colon-separated upper-case hex). */
export type VerifyPeer = (fingerprint: string) => void;

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
  const tls = url.protocol === 'https:' ? pinnedTls(host, port, verifyPeer) : Promise.resolve(undefined);
  return tls.then((socket) => new Promise((ok, fail) => {
    const r = httpRequest({
      host, port, method: req.method, path: url.pathname + url.search, headers: req.headers,
      ...(socket ? { createConnection: () => socket } : { agent: false }),
    }, ok);
    r.on('error', fail);
    r.end(req.body);
  }));
}

function pinnedTls(host: string, port: number, verifyPeer: VerifyPeer): Promise<TLSSocket> {
  return new Promise((ok, fail) => {
    // rejectUnauthorized: false only lets the self-signed certificate through to verifyPeer,
    // which decides before anything is sent.
    const s = connect({ host, port, servername: isIP(host) ? undefined : host, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    s.once('error', fail);
    s.once('secureConnect', () => {
      try {
        verifyPeer(s.getPeerCertificate().fingerprint256);
        s.off('error', fail);
        ok(s);
      } catch (e) {
        s.destroy();
        fail(e);
      }
    });
  });
}
