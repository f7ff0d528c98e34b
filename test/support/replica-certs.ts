// Certificates for the Hyper-V Replica tests, made with the openssl CLI: a self-signed test CA
// and leaf certificates it signs (EC P-256, serverAuth + clientAuth, the CN also a DNS name,
// optional IP SANs), and a "rogue" self-signed one no host trusts. `install` puts a certificate
// into a daemon's replication certificate store (DIR/replication-certificates, files 0600);
// `trust` adds a CA there.
import { execFile } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCert { crt: string; key: string; thumbprint: string }

const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function thumbprint(crt: string): Promise<string> {
  return new X509Certificate(await readFile(crt)).fingerprint.replace(/:/g, '');
}

/** A self-signed CA in `dir` (its name is the file stem). */
export async function makeCa(dir: string, name: string): Promise<TestCert> {
  await mkdir(dir, { recursive: true });
  const crt = join(dir, `${name}.crt`), key = join(dir, `${name}.key`);
  await run('openssl', ['req', '-x509', ...ec, '-days', '30', '-subj', `/CN=${name}`, '-keyout', key, '-out', crt,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return { crt, key, thumbprint: await thumbprint(crt) };
}

/** A certificate for `cn` signed by `ca` (or self-signed without one), usable as TLS server and client. */
export async function issue(dir: string, cn: string, ca: TestCert | undefined, ips: string[] = []): Promise<TestCert> {
  const crt = join(dir, `${cn}.crt`), key = join(dir, `${cn}.key`), csr = join(dir, `${cn}.csr`), ext = join(dir, `${cn}.ext`);
  await writeFile(ext, `basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=${[`DNS:${cn}`, ...ips.map((i) => `IP:${i}`)].join(',')}\n`);
  if (!ca) {
    await run('openssl', ['req', '-x509', ...ec, '-days', '30', '-subj', `/CN=${cn}`, '-keyout', key, '-out', crt, '-extensions', 'v3', '-config', await selfConfig(dir, cn, ext)]);
  } else {
    await run('openssl', ['req', '-new', ...ec, '-subj', `/CN=${cn}`, '-keyout', key, '-out', csr]);
    // A random serial, not -CAcreateserial: two certificates issued at once would race on the CA's .srl file.
    await run('openssl', ['x509', '-req', '-in', csr, '-CA', ca.crt, '-CAkey', ca.key, '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '30', '-out', crt, '-extfile', ext]);
  }
  return { crt, key, thumbprint: await thumbprint(crt) };
}

async function selfConfig(dir: string, cn: string, ext: string): Promise<string> {
  const p = join(dir, `${cn}.cnf`);
  await writeFile(p, `[req]\ndistinguished_name=dn\n[dn]\n[v3]\n${await readFile(ext, 'utf8')}`);
  return p;
}

export async function install(dataDir: string, c: TestCert, name: string): Promise<void> {
  const store = join(dataDir, 'replication-certificates');
  await mkdir(store, { recursive: true, mode: 0o700 });
  for (const [from, to] of [[c.crt, `${name}.crt`], [c.key, `${name}.key`]] as const) {
    await copyFile(from, join(store, to));
    await chmod(join(store, to), 0o600);
  }
}

export async function trust(dataDir: string, ca: TestCert): Promise<void> {
  const dir = join(dataDir, 'replication-certificates', 'trusted');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await copyFile(ca.crt, join(dir, 'ca.crt'));
  await chmod(join(dir, 'ca.crt'), 0o600);
}
