// TLS to a daemon whose certificate is self-signed (api/tls-certificate.ts): the usual chain check
// cannot say anything, so the connection is made first, the caller judges the certificate's
// SHA-256 fingerprint, and only then is the socket handed back to write on. Nothing the caller
// writes (a token, a move's secret) can reach a peer it has not accepted. Shared by the CLI's
// HTTPS transport (fingerprint pinned on first use) and a move's streams between daemons
// (fingerprint learned from the destination over the authenticated prepare).
import { isIP } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import { VmhostError } from './errors.ts';

/** A daemon's TLS key and certificate, PEM. */
export interface TlsIdentity {
  key: string;
  cert: string;
  /** SHA-256 of the DER certificate, colon-separated upper-case hex (as `openssl x509 -fingerprint -sha256` prints it). */
  fingerprint: string;
}

/** Throws to refuse the peer, whose certificate has `fingerprint` (colon-separated upper-case hex). */
export type VerifyPeer = (fingerprint: string) => void;

export interface PinnedTlsTarget {
  host: string;
  port: number;
  localAddress?: string;
  ALPNProtocols?: string[];
  /** A peer that does not finish the handshake within it is given up on (none: the kernel's connect timeout). */
  timeoutMs?: number;
}

export function connectPinned(to: PinnedTlsTarget, verifyPeer: VerifyPeer): Promise<TLSSocket> {
  return new Promise((ok, fail) => {
    // rejectUnauthorized: false only lets the self-signed certificate through to verifyPeer,
    // which decides before anything is sent.
    const s = connect({
      host: to.host, port: to.port, servername: isIP(to.host) ? undefined : to.host, rejectUnauthorized: false,
      ...(to.localAddress ? { localAddress: to.localAddress } : {}), ...(to.ALPNProtocols ? { ALPNProtocols: to.ALPNProtocols } : {}),
    });
    s.once('error', fail);
    if (to.timeoutMs !== undefined) s.setTimeout(to.timeoutMs, () => s.destroy(new Error(`no TLS handshake with ${to.host}:${to.port} within ${to.timeoutMs} ms`)));
    s.once('secureConnect', () => {
      try {
        verifyPeer(s.getPeerCertificate().fingerprint256);
        s.setTimeout(0);
        s.off('error', fail);
        ok(s);
      } catch (e) {
        s.destroy();
        fail(e);
      }
    });
  });
}

/** Accepts exactly the certificate `expected`; any other is TLS_CERTIFICATE_CHANGED, naming `where` (the peer as the caller knows it). */
export function pinnedTo(expected: string, where: string): VerifyPeer {
  return (presented) => {
    if (presented === expected) return;
    throw new VmhostError('TLS_CERTIFICATE_CHANGED',
      `${where} presented TLS certificate ${presented}, not ${expected}: refused before anything was sent (someone between the hosts, or not the host that was asked)`,
      { peer: where, pinned: expected, presented });
  };
}
