// Trust on first use for hosts' self-signed TLS certificates (src/api/tls-certificate.ts), as
// ssh does with host keys: <config dir>/known_hosts holds one `HOST:PORT FINGERPRINT` line per
// host. The first connection records the certificate's SHA-256 fingerprint and says so; a later
// connection that presents another certificate is refused before a byte of the request (and so
// the token) is sent.
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VmhostError } from '../common/index.ts';
import { configDir, ensureConfigDir } from './config-dir.ts';

export function knownHostsPath(): string {
  return join(configDir(), 'known_hosts');
}

/** The pinned fingerprint of `hostKey` (HOST:PORT), if any. */
export function pinnedFingerprint(hostKey: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(knownHostsPath(), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  for (const line of text.split('\n')) {
    const [key, fingerprint] = line.trim().split(/\s+/);
    if (key === hostKey && fingerprint) return fingerprint;
  }
  return undefined;
}

/**
 * Checks the certificate `fingerprint` the host `hostKey` presented: pins it when the host is
 * new (telling `notice`), throws TLS_CERTIFICATE_CHANGED when another one is pinned.
 */
export function checkKnownHost(hostKey: string, fingerprint: string, notice: (msg: string) => void): void {
  const pinned = pinnedFingerprint(hostKey);
  if (pinned === fingerprint) return;
  if (pinned !== undefined) {
    throw new VmhostError('TLS_CERTIFICATE_CHANGED',
      `the TLS certificate of ${hostKey} has changed (pinned ${pinned}, presented ${fingerprint}): someone may be impersonating the host, `
      + `or it made a new certificate; compare with TlsCertificateFingerprint of Get-VMHost on that host, then remove the line '${hostKey} …' from ${knownHostsPath()} to trust the new one`,
      { host: hostKey, pinned, presented: fingerprint });
  }
  appendFileSync(join(ensureConfigDir(), 'known_hosts'), `${hostKey} ${fingerprint}\n`, { mode: 0o600 });
  notice(`trusting ${hostKey} on first use: TLS certificate SHA-256 fingerprint ${fingerprint}, pinned in ${knownHostsPath()}`);
}
