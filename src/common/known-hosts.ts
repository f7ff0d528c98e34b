// Trust on first use for hosts' self-signed TLS certificates (api/tls-certificate.ts), as ssh
// does with host keys: a known_hosts file holds one `HOST:PORT FINGERPRINT` line per host. The
// first connection records the certificate's SHA-256 fingerprint and says so; a later
// connection that presents another certificate is refused before a byte of the request (and so
// a token or a move's ticket) is sent. The CLI keeps one in its config dir (cli/known-hosts.ts),
// a daemon one in its data dir for the destinations it moves VMs to (host/move-destination.ts).
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { VmhostError } from './errors.ts';

export class KnownHosts {
  constructor(readonly path: string) {}

  /** The pinned fingerprint of `hostKey` (HOST:PORT), if any. */
  pinned(hostKey: string): string | undefined {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
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
  check(hostKey: string, fingerprint: string, notice: (msg: string) => void): void {
    const pinned = this.pinned(hostKey);
    if (pinned === fingerprint) return;
    if (pinned !== undefined) {
      throw new VmhostError('TLS_CERTIFICATE_CHANGED',
        `the TLS certificate of ${hostKey} has changed (pinned ${pinned}, presented ${fingerprint}): someone may be impersonating the host, `
        + `or it made a new certificate; compare with TlsCertificateFingerprint of Get-VMHost on that host, then remove the line '${hostKey} …' from ${this.path} to trust the new one`,
        { host: hostKey, pinned, presented: fingerprint });
    }
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    appendFileSync(this.path, `${hostKey} ${fingerprint}\n`, { mode: 0o600 });
    notice(`trusting ${hostKey} on first use: TLS certificate SHA-256 fingerprint ${fingerprint}, pinned in ${this.path}`);
  }
}
