// QEMU's own TLS for a move's migration stream (Move-VM's multifd options: Compression, SMB).
// Through our relay the last bytes of the multifd channels sat in the relay's socket buffers
// after the source QEMU had counted its downtime as over, and the guest stayed stopped until
// they drained (BENCHMARKS.md, issue 11): with TLS in QEMU the destination QEMU reads its TCP
// sockets itself and nothing waits in user space. Each side makes, per move, a throw-away CA
// and a leaf it signs (the CA's key is deleted at once: nobody can sign with it again); only the
// CA certificates cross, in the authenticated prepare (source → destination) and its answer
// (destination → source). QEMU trusts exactly the two CAs of the move and verifies both ends
// (the destination QEMU asks for the client's certificate), so a third party can neither read
// the guest's memory nor feed the destination a stream; no private key or secret crosses.
// QEMU reads the files when its tls-creds-x509 object is added: the destination's stay on disk
// only for that call, the source's until its migration ends.
// The certificates are valid from a day before they are made (GnuTLS checks the dates on both
// ends, and the hosts' clocks need not agree to the second); OpenSSL 3.0's `req` cannot backdate,
// so they are signed by `openssl ca` with a throw-away database in the scratch dir.
import { execFile } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { VmhostError } from '../common/index.ts';

/** The name in the destination's leaf: QEMU's tls-hostname (the peer is pinned by its CA, not by its address). */
export const MIGRATION_TLS_HOSTNAME = 'vmhost-migration';

export type MoveTlsRole = 'server' | 'client';

/** One side's per-move TLS identity, PEM: its CA (sent to the peer) and the leaf that CA signed. */
export interface MoveTlsIdentity { role: MoveTlsRole; ca: string; cert: string; key: string }

/**
 * RFC 7919's ffdhe2048 group. QEMU's server credentials load DH parameters from the dir and,
 * without the file, generate fresh 2048-bit ones (seconds of CPU per move); TLS 1.3 with ECDHE
 * does not use them. Public constants: `openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe2048`.
 */
const FFDHE2048 = `-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
`;

const DAY_MS = 86_400_000;

/** `openssl ca`'s configuration: a database in the scratch dir, and the extensions QEMU checks (a leaf: not a CA, signing and key encipherment, the purpose of its end). */
const caConfig = (role: MoveTlsRole): string => `[ca]
default_ca = move
[move]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign
[leaf_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = ${role === 'server' ? 'serverAuth' : 'clientAuth'}
${role === 'server' ? `subjectAltName = DNS:${MIGRATION_TLS_HOSTNAME}` : ''}
`;

/** openssl's time format, YYYYMMDDHHMMSSZ. */
const asn1Time = (ms: number): string => new Date(ms).toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');

/** A fresh CA and a leaf for `role` (the destination's names MIGRATION_TLS_HOSTNAME), made with openssl (as the daemon's own certificate is). */
export async function makeMoveIdentity(role: MoveTlsRole): Promise<MoveTlsIdentity> {
  // A private scratch dir (mkdtemp makes it 0700): the keys never pass through a readable place.
  const tmp = await mkdtemp(join(tmpdir(), 'vmhost-move-tls-'));
  const key = ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const now = Date.now();
  const sign = ['ca', '-batch', '-config', 'openssl.cnf', '-notext', '-startdate', asn1Time(now - DAY_MS), '-enddate', asn1Time(now + 2 * DAY_MS)];
  try {
    await writeFile(join(tmp, 'openssl.cnf'), caConfig(role));
    await writeFile(join(tmp, 'index.txt'), '');
    await writeFile(join(tmp, 'serial'), `${randomBytes(8).toString('hex')}\n`);
    await openssl([...key, '-subj', `/CN=vmhost move ${role} CA`, '-keyout', 'ca.key', '-out', 'ca.csr'], tmp);
    await openssl([...sign, '-selfsign', '-keyfile', 'ca.key', '-in', 'ca.csr', '-out', 'ca.pem', '-extensions', 'ca_ext'], tmp);
    await openssl([...key, '-subj', `/CN=${MIGRATION_TLS_HOSTNAME}`, '-keyout', 'key.pem', '-out', 'leaf.csr'], tmp);
    await openssl([...sign, '-cert', 'ca.pem', '-keyfile', 'ca.key', '-in', 'leaf.csr', '-out', 'cert.pem', '-extensions', 'leaf_ext'], tmp);
    const [ca, cert, leafKey] = await Promise.all(['ca.pem', 'cert.pem', 'key.pem'].map((n) => readFile(join(tmp, n), 'utf8')));
    return { role, ca: ca!, cert: cert!, key: leafKey! };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** The peer's CA as it came over the wire: one PEM certificate of a CA (INVALID_ARGUMENT otherwise); its SHA-256 fingerprint. */
export function checkPeerCa(pem: string, from: string): string {
  let x: X509Certificate;
  try {
    x = new X509Certificate(pem);
  } catch (e) {
    throw new VmhostError('INVALID_ARGUMENT', `${from}'s migration stream CA is not a PEM certificate: ${(e as Error).message}`, { peer: from }, { cause: e });
  }
  if (!x.ca || (pem.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length !== 1) {
    throw new VmhostError('INVALID_ARGUMENT', `${from}'s migration stream CA must be one CA certificate`, { peer: from });
  }
  return x.fingerprint256;
}

/**
 * QEMU's tls-creds-x509 dir for `own`'s end in `dir`: the two CAs of the move (QEMU checks its own
 * leaf against the list as well as the peer's), the leaf, and for the server the DH group. 0600,
 * owned by QEMU's user when it runs as one (it reads them after dropping root).
 */
export async function writeQemuCredentials(dir: string, own: MoveTlsIdentity, peerCa: string, owner?: { uid: number; gid: number }): Promise<void> {
  const files: [string, string][] = [
    ['ca-cert.pem', own.ca + peerCa],
    [`${own.role}-cert.pem`, own.cert],
    [`${own.role}-key.pem`, own.key],
    ...(own.role === 'server' ? [['dh-params.pem', FFDHE2048] as [string, string]] : []),
  ];
  for (const [name, text] of files) {
    const path = join(dir, name);
    await writeFile(path, text, { mode: 0o600, flag: 'wx' });
    if (owner) await chown(path, owner.uid, owner.gid);
  }
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await promisify(execFile)('openssl', args, { cwd });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    const why = err.code === 'ENOENT' ? 'openssl is not installed (Debian package openssl; scripts/install-deps.sh)' : (err.stderr?.trim() || err.message);
    throw new VmhostError('TLS_CERTIFICATE_GENERATION_FAILED', `cannot make the move's TLS credentials: ${why}`, {}, { cause: e });
  }
}
