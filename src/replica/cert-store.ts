// The replication certificate store, the Linux stand-in for Windows' machine "Personal" and
// "Trusted Root" stores that Hyper-V Replica's certificate authentication reads: in
// DIR/replication-certificates/, `<name>.crt` + `<name>.key` (PEM, 0600) are this host's own
// certificates, picked by thumbprint (SHA-1 of the DER, upper-case hex, as Windows shows it) or,
// without one, the store's only certificate; `trusted/*.crt` are the CAs whose certificates the
// host accepts from a peer. The admin (or the test's self-signed CA, made with the openssl CLI)
// puts the files there; nothing here makes or signs certificates.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VmhostError } from '../common/index.ts';

export interface StoredCertificate {
  cert: string;
  key: string;
  thumbprint: string;
  /** Subject CN and DNS/IP subject alternative names. */
  names: string[];
  subject: string;
}

export function storeDir(dataDir: string): string {
  return join(dataDir, 'replication-certificates');
}

async function list(dir: string, ext: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((f) => f.endsWith(ext)).sort().map((f) => join(dir, f));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/** SHA-1 thumbprint as Windows prints it: 40 upper-case hex digits. */
export function thumbprintOf(x: X509Certificate): string {
  return x.fingerprint.replace(/:/g, '').toUpperCase();
}

/** The names an X.509 certificate carries (CN, DNS and IP SANs), lower-case. */
export function namesOf(subject: string | undefined, subjectAltName: string | undefined): string[] {
  const out = new Set<string>();
  const cn = /(?:^|\n|, ?)CN=([^\n,]+)/.exec(subject ?? '');
  if (cn) out.add(cn[1]!.trim().toLowerCase());
  for (const part of (subjectAltName ?? '').split(/,\s*/)) {
    const m = /^(?:DNS|IP Address):(.+)$/.exec(part.trim());
    if (m) out.add(m[1]!.trim().toLowerCase());
  }
  return [...out];
}

/** The names of a TLS peer's certificate. */
export function peerNames(c: PeerCertificate): string[] {
  return namesOf(c.subject?.CN ? `CN=${c.subject.CN}` : undefined, c.subjectaltname);
}

/** This host's certificate with `thumbprint` (null: the store's only one). */
export async function loadCertificate(dataDir: string, thumbprint: string | null): Promise<StoredCertificate> {
  const dir = storeDir(dataDir);
  const found: StoredCertificate[] = [];
  for (const crt of await list(dir, '.crt')) {
    const cert = await readFile(crt, 'utf8');
    const x = new X509Certificate(cert);
    const tp = thumbprintOf(x);
    if (thumbprint !== null && tp !== thumbprint.toUpperCase()) continue;
    const keyPath = crt.replace(/\.crt$/, '.key');
    const key = await readFile(keyPath, 'utf8').catch(() => {
      throw new VmhostError('REPLICATION_CERTIFICATE_NOT_FOUND', `certificate ${tp} (${crt}) has no private key ${keyPath}`, { thumbprint: tp });
    });
    if (!x.checkPrivateKey(createPrivateKey(key))) throw new VmhostError('REPLICATION_CERTIFICATE_NOT_FOUND', `${keyPath} is not the key of ${crt}`, { thumbprint: tp });
    found.push({ cert, key, thumbprint: tp, names: namesOf(x.subject, x.subjectAltName), subject: x.subject.replace(/\n/g, ', ') });
  }
  if (found.length === 1) return found[0]!;
  const what = thumbprint === null ? (found.length === 0 ? 'no certificate' : `${found.length} certificates: give -CertificateThumbprint`) : `no certificate with thumbprint ${thumbprint}`;
  throw new VmhostError('REPLICATION_CERTIFICATE_NOT_FOUND', `the replication certificate store ${dir} has ${what}`, { dir, ...(thumbprint ? { thumbprint } : {}) });
}

/** The CAs this host trusts for replication (PEM), none when the folder is absent. */
export async function trustedCas(dataDir: string): Promise<string[]> {
  return Promise.all((await list(join(storeDir(dataDir), 'trusted'), '.crt')).map((f) => readFile(f, 'utf8')));
}
