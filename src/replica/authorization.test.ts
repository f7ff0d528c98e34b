// Who may replicate into this Replica server: exact names before wildcards, the most specific
// wildcard first, any-server only into the default location, and every refusal says why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyServerSettings, authorize, checkEntry, DEFAULT_SERVER_SETTINGS, nameMatches, type AuthorizationEntry } from './authorization.ts';

const on = { ...DEFAULT_SERVER_SETTINGS, ReplicationEnabled: true };
const entries: AuthorizationEntry[] = [
  { AllowedPrimaryServer: '*.contoso.com', ReplicaStorageLocation: '/r/contoso', TrustGroup: 'c' },
  { AllowedPrimaryServer: '*.east.contoso.com', ReplicaStorageLocation: '/r/east', TrustGroup: 'c' },
  { AllowedPrimaryServer: 'hv1.east.contoso.com', ReplicaStorageLocation: '/r/hv1', TrustGroup: 'c' },
];

test('wildcards cover one label or more, never the bare domain; names are case-insensitive', () => {
  assert.equal(nameMatches('*.contoso.com', 'a.contoso.com'), true);
  assert.equal(nameMatches('*.contoso.com', 'a.b.CONTOSO.com'), true);
  assert.equal(nameMatches('*.contoso.com', 'contoso.com'), false);
  assert.equal(nameMatches('*.contoso.com', 'evilcontoso.com'), false);
  assert.equal(nameMatches('HV1.contoso.com', 'hv1.contoso.COM'), true);
  assert.equal(nameMatches('*', 'anything'), true);
});

test('the most specific entry decides the storage folder', () => {
  assert.deepEqual(authorize(on, entries, ['hv1.east.contoso.com']), { ok: true, storage: '/r/hv1', entry: entries[2], name: 'hv1.east.contoso.com' });
  assert.equal((authorize(on, entries, ['hv2.east.contoso.com']) as { storage: string }).storage, '/r/east');
  assert.equal((authorize(on, entries, ['hv3.west.contoso.com']) as { storage: string }).storage, '/r/contoso');
  // Any of the certificate's names may match (CN or a DNS SAN).
  assert.equal((authorize(on, entries, ['primary-a', 'hv1.east.contoso.com']) as { storage: string }).storage, '/r/hv1');
});

test('an unknown primary is refused with its name and the way to allow it; any-server goes to the default location', () => {
  const r = authorize(on, entries, ['intruder.fabrikam.com']);
  assert.equal(r.ok, false);
  assert.equal((r as { code: string }).code, 'REPLICATION_UNAUTHORIZED');
  assert.match((r as { reason: string }).reason, /'intruder\.fabrikam\.com' is not authorized .*New-VMReplicationAuthorizationEntry/);
  const any = { ...on, ReplicationAllowedFromAnyServer: true, DefaultStorageLocation: '/r/any' };
  assert.deepEqual(authorize(any, entries, ['intruder.fabrikam.com']), { ok: true, storage: '/r/any', entry: null, name: 'intruder.fabrikam.com' });
  assert.equal(authorize(any, entries, []).ok, false, 'a certificate without a name is never "any server"');
  assert.equal((authorize(DEFAULT_SERVER_SETTINGS, entries, ['hv1.east.contoso.com']) as { code: string }).code, 'REPLICATION_NOT_ENABLED');
});

test('Set-VMReplicationServer and the entries refuse what cannot work', () => {
  assert.throws(() => applyServerSettings(DEFAULT_SERVER_SETTINGS, { AllowedAuthenticationType: 'Kerberos' as 'Certificate' }), /only Certificate/);
  assert.throws(() => applyServerSettings(DEFAULT_SERVER_SETTINGS, { CertificateAuthenticationPort: 70000 }), /not a TCP port/);
  assert.throws(() => applyServerSettings(DEFAULT_SERVER_SETTINGS, { ReplicationEnabled: true, ReplicationAllowedFromAnyServer: true }), /needs a default storage location/);
  assert.throws(() => applyServerSettings(DEFAULT_SERVER_SETTINGS, { DefaultStorageLocation: 'relative/dir' }), /not an absolute path/);
  assert.equal(applyServerSettings(DEFAULT_SERVER_SETTINGS, { CertificateAuthenticationPort: 8443, DefaultStorageLocation: undefined }).CertificateAuthenticationPort, 8443);
  assert.throws(() => checkEntry({ AllowedPrimaryServer: 'HV1.east.contoso.com', ReplicaStorageLocation: '/x', TrustGroup: 'g' }, entries), /already exists/);
  assert.throws(() => checkEntry({ AllowedPrimaryServer: 'a b', ReplicaStorageLocation: '/x', TrustGroup: 'g' }, []), /not a server name/);
  assert.throws(() => checkEntry({ AllowedPrimaryServer: 'a', ReplicaStorageLocation: 'x', TrustGroup: 'g' }, []), /not an absolute path/);
  assert.equal(checkEntry({ AllowedPrimaryServer: 'HV9.Contoso.com', ReplicaStorageLocation: '/x', TrustGroup: 'g' }, entries).AllowedPrimaryServer, 'hv9.contoso.com');
});
