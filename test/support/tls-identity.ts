// A TLS identity for tests of the streams between daemons, made by the daemon's own generator
// (api/tls-certificate.ts): once per test process (its scratch dir removed at once: the identity
// is in memory), or a second one in `dir`.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateTlsIdentity, type TlsIdentity } from '../../src/api/tls-certificate.ts';

let made: Promise<TlsIdentity> | undefined;

export function testTlsIdentity(dir?: string): Promise<TlsIdentity> {
  if (dir !== undefined) return loadOrCreateTlsIdentity(dir);
  return (made ??= (async () => {
    const scratch = await mkdtemp(join(tmpdir(), 'vmhost-tls-'));
    try {
      return await loadOrCreateTlsIdentity(scratch);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  })());
}
