// The daemon's TLS identity for a non-loopback listener: a self-signed certificate made with
// `openssl` on first start and kept in the data dir (tls.key, tls.crt, both 0600). Nobody signs
// it; clients pin its SHA-256 fingerprint on first use (src/cli/known-hosts.ts), as ssh does.
// The certificate file is written last, so it marks a finished generation: a key without a
// certificate is an interrupted first start and is made again; a certificate without its key,
// an unparseable file or a key that does not match is an error the admin must look at.
import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { VmhostError } from '../common/index.ts';
import type { TlsIdentity } from '../common/pinned-tls.ts';
import { writeFileAtomic } from '../host/index.ts';

export type { TlsIdentity };

const DAYS = 3650; // self-signed and pinned: expiry would only break clients, not protect them

export async function loadOrCreateTlsIdentity(dataDir: string): Promise<TlsIdentity> {
  const keyPath = join(dataDir, 'tls.key');
  const certPath = join(dataDir, 'tls.crt');
  let cert = await readIfExists(certPath);
  let key: string | undefined;
  if (cert === undefined) {
    ({ key, cert } = await generate(dataDir));
    await writeFileAtomic(keyPath, key, 0o600);
    await writeFileAtomic(certPath, cert, 0o600);
  } else {
    key = await readIfExists(keyPath);
    if (key === undefined) throw invalid(`${certPath} exists but its key ${keyPath} does not (remove both to make a new certificate)`, certPath);
  }
  return { key, cert, fingerprint: check(cert, key, certPath, keyPath) };
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw invalid(`cannot read ${path}: ${(e as Error).message}`, path, e);
  }
}

function check(cert: string, key: string, certPath: string, keyPath: string): string {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (e) {
    throw invalid(`${certPath} is not a PEM certificate: ${(e as Error).message} (remove tls.crt and tls.key to make a new one)`, certPath, e);
  }
  try {
    if (!x509.checkPrivateKey(createPrivateKey(key))) throw new Error('it does not belong to the certificate');
  } catch (e) {
    throw invalid(`${keyPath} is not the key of ${certPath}: ${(e as Error).message} (remove tls.crt and tls.key to make a new pair)`, keyPath, e);
  }
  return x509.fingerprint256;
}

async function generate(dataDir: string): Promise<{ key: string; cert: string }> {
  // A private scratch dir beside the data (the daemon's umask is 077), so the key never
  // passes through a world-readable place.
  const tmp = await mkdtemp(join(dataDir, '.tls-'));
  try {
    await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-days', String(DAYS), '-subj', `/CN=vmhost ${hostname()}`, '-keyout', join(tmp, 'key.pem'), '-out', join(tmp, 'cert.pem')]);
    return { key: await readFile(join(tmp, 'key.pem'), 'utf8'), cert: await readFile(join(tmp, 'cert.pem'), 'utf8') };
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    const why = err.code === 'ENOENT' ? 'openssl is not installed (Debian package openssl; scripts/install-deps.sh)' : (err.stderr?.trim() || err.message);
    throw new VmhostError('TLS_CERTIFICATE_GENERATION_FAILED', `cannot make the daemon's TLS certificate: ${why}`, { dir: dataDir }, { cause: e });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

function invalid(message: string, path: string, cause?: unknown): VmhostError {
  return new VmhostError('TLS_CERTIFICATE_INVALID', message, { path }, { cause });
}
