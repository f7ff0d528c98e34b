// Per-host credentials: <config dir>/credentials.json maps HOST:PORT to the token that host
// accepts (Set-VMHostCredential). The CLI sends a host only its own entry, never the local
// daemon's token. Like ssh with a private key, the file is refused when anyone but its owner
// could read it.
import { lstatSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { VmhostError } from '../common/index.ts';
import { configDir, ensureConfigDir } from './config-dir.ts';

export interface HostCredential { Token: string }
type CredentialFile = Record<string, HostCredential>;

export function credentialsPath(): string {
  return join(configDir(), 'credentials.json');
}

export function readCredentials(): CredentialFile {
  const path = credentialsPath();
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw e;
  }
  if (!st.isFile() || (st.mode & 0o077) !== 0 || st.uid !== process.getuid?.()) {
    throw new VmhostError('CREDENTIALS_FILE_UNSAFE',
      `${path} must be a regular file only its owner can read (it is mode ${(st.mode & 0o777).toString(8)}${st.isFile() ? '' : ', not a regular file'}); run: chmod 600 ${path}`,
      { path, mode: (st.mode & 0o777).toString(8) });
  }
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as CredentialFile;
  } catch (e) {
    throw new VmhostError('CREDENTIALS_FILE_INVALID', `${path} is not a credentials file: ${(e as Error).message}`, { path }, { cause: e });
  }
}

export function credentialFor(hostKey: string): HostCredential | undefined {
  return readCredentials()[hostKey];
}

/** Sets (credential) or removes (undefined) the entry of `hostKey`; the file is replaced whole, 0600. */
export function updateCredential(hostKey: string, credential: HostCredential | undefined): void {
  const all = readCredentials();
  if (credential) all[hostKey] = credential;
  else delete all[hostKey];
  const path = join(ensureConfigDir(), 'credentials.json');
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    writeFileSync(tmp, JSON.stringify(all, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
}
