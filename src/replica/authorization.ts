// The Replica server's settings and who may replicate into it, pure: Set-VMReplicationServer's
// rules and the authorization entries (New-/Set-/Remove-VMReplicationAuthorizationEntry), and
// the one decision a connecting primary gets — accepted into which storage folder, or refused
// with the reason. A primary is known by the names its certificate carries (subject CN and DNS
// subject alternative names, as Hyper-V matches the primary's FQDN); `AllowedPrimaryServer` is
// a name or a `*.suffix` wildcard, as in Hyper-V. The certificate's chain to a trusted CA is
// checked by TLS before this is asked.
import { isAbsolute } from 'node:path';
import { VmhostError } from '../common/index.ts';

export type ReplicaAuthType = 'Certificate';

export interface ReplicationServerSettings {
  ReplicationEnabled: boolean;
  AllowedAuthenticationType: ReplicaAuthType;
  ReplicationAllowedFromAnyServer: boolean;
  /** Where replicas of any allowed primary go when no entry names a folder. */
  DefaultStorageLocation: string | null;
  CertificateAuthenticationPort: number;
  /** The server's own certificate (in the replication certificate store); null: the store's only one. */
  CertificateThumbprint: string | null;
}

export interface AuthorizationEntry {
  AllowedPrimaryServer: string;
  ReplicaStorageLocation: string;
  TrustGroup: string;
}

export const DEFAULT_SERVER_SETTINGS: ReplicationServerSettings = {
  ReplicationEnabled: false, AllowedAuthenticationType: 'Certificate', ReplicationAllowedFromAnyServer: false,
  DefaultStorageLocation: null, CertificateAuthenticationPort: 443, CertificateThumbprint: null,
};

function invalid(param: string, message: string): VmhostError {
  return new VmhostError('INVALID_ARGUMENT', `${param}: ${message}`, { param });
}

/** Set-VMReplicationServer: the settings after `patch`, or the first rule it breaks. */
export function applyServerSettings(cur: ReplicationServerSettings, patch: Partial<ReplicationServerSettings>): ReplicationServerSettings {
  const next = { ...cur, ...Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) } as ReplicationServerSettings;
  if (next.AllowedAuthenticationType !== 'Certificate') {
    throw new VmhostError('REPLICATION_UNSUPPORTED', `AllowedAuthenticationType: only Certificate is supported (Kerberos needs an Active Directory domain)`, { param: 'AllowedAuthenticationType' });
  }
  const port = next.CertificateAuthenticationPort;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalid('CertificateAuthenticationPort', `${port} is not a TCP port (1-65535)`);
  if (next.DefaultStorageLocation !== null && !isAbsolute(next.DefaultStorageLocation)) throw invalid('DefaultStorageLocation', `${next.DefaultStorageLocation} is not an absolute path`);
  if (next.ReplicationEnabled && next.ReplicationAllowedFromAnyServer && next.DefaultStorageLocation === null) {
    throw invalid('DefaultStorageLocation', 'replication from any server needs a default storage location');
  }
  return next;
}

const NAME = /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/** New-VMReplicationAuthorizationEntry: the entry checked; a second entry for one name is refused. */
export function checkEntry(e: AuthorizationEntry, others: readonly AuthorizationEntry[]): AuthorizationEntry {
  if (e.AllowedPrimaryServer !== '*' && !NAME.test(e.AllowedPrimaryServer)) {
    throw invalid('AllowedPrimaryServer', `'${e.AllowedPrimaryServer}' is not a server name, a *.domain wildcard or *`);
  }
  if (!isAbsolute(e.ReplicaStorageLocation)) throw invalid('ReplicaStorageLocation', `${e.ReplicaStorageLocation} is not an absolute path`);
  if (e.TrustGroup === '' || e.TrustGroup.length > 100) throw invalid('TrustGroup', 'must be 1-100 characters');
  if (others.some((o) => o.AllowedPrimaryServer.toLowerCase() === e.AllowedPrimaryServer.toLowerCase())) {
    throw new VmhostError('ALREADY_EXISTS', `an authorization entry for '${e.AllowedPrimaryServer}' already exists`, { entry: e.AllowedPrimaryServer });
  }
  return { ...e, AllowedPrimaryServer: e.AllowedPrimaryServer.toLowerCase() };
}

/** Whether `pattern` (a name, `*.suffix` or `*`) covers `name`; case-insensitive, a wildcard covers one label or more. */
export function nameMatches(pattern: string, name: string): boolean {
  const p = pattern.toLowerCase(), n = name.toLowerCase();
  if (p === '*') return true;
  if (p.startsWith('*.')) return n.endsWith(p.slice(1)) && n.length > p.length - 1;
  return p === n;
}

export type Decision =
  | { ok: true; storage: string; entry: AuthorizationEntry | null; name: string }
  | { ok: false; code: 'REPLICATION_NOT_ENABLED' | 'REPLICATION_UNAUTHORIZED'; reason: string };

/**
 * A primary whose certificate (already chained to a trusted CA) carries `names`: accepted into
 * the most specific matching entry's folder (an exact name before a wildcard, a longer wildcard
 * before a shorter, `*` last), else into the default location when any server is allowed.
 */
export function authorize(s: ReplicationServerSettings, entries: readonly AuthorizationEntry[], names: readonly string[]): Decision {
  if (!s.ReplicationEnabled) return { ok: false, code: 'REPLICATION_NOT_ENABLED', reason: 'this host is not a Replica server (Set-VMReplicationServer -ReplicationEnabled $true)' };
  const rank = (p: string) => (p === '*' ? 0 : p.startsWith('*.') ? p.length : 10_000);
  let best: { entry: AuthorizationEntry; name: string } | undefined;
  for (const entry of entries) {
    for (const name of names) {
      if (nameMatches(entry.AllowedPrimaryServer, name) && (!best || rank(entry.AllowedPrimaryServer) > rank(best.entry.AllowedPrimaryServer))) best = { entry, name };
    }
  }
  if (best) return { ok: true, storage: best.entry.ReplicaStorageLocation, entry: best.entry, name: best.name };
  if (s.ReplicationAllowedFromAnyServer && s.DefaultStorageLocation !== null && names.length > 0) {
    return { ok: true, storage: s.DefaultStorageLocation, entry: null, name: names[0]! };
  }
  return {
    ok: false, code: 'REPLICATION_UNAUTHORIZED',
    reason: `the primary server '${names.join("', '") || '(a certificate without a name)'}' is not authorized to replicate to this server (New-VMReplicationAuthorizationEntry -AllowedPrimaryServer, or Set-VMReplicationServer -ReplicationAllowedFromAnyServer $true)`,
  };
}
