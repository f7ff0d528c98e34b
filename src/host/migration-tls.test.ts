// A move's TLS credentials (migration-tls.ts): what openssl made is a CA and a leaf it signed,
// for the role's purpose, valid from a day back; the peer's CA is checked as it comes over the wire; QEMU's files are
// 0600. Then two real QEMUs migrate multifd+zstd over QEMU's own TLS with them, and a
// destination whose leaf another CA signed (an impostor) is refused before anything is sent,
// the source running on and able to migrate again.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isVmhostError } from '../common/index.ts';
import { runtimePathsIn } from '../qemu/command-line.ts';
import { migrateLive, startIncoming, type MigrationTuning } from '../qemu/live-migration.ts';
import { QemuTestBed } from '../qemu/test-support.ts';
import { checkPeerCa, makeMoveIdentity, MIGRATION_TLS_HOSTNAME, writeQemuCredentials, type MoveTlsIdentity } from './migration-tls.ts';

const bed = new QemuTestBed();
after(() => bed.cleanup());

test('a move identity is a fresh CA and a leaf it signed for its end; the peer CA is checked', async () => {
  const [server, client] = await Promise.all([makeMoveIdentity('server'), makeMoveIdentity('client')]);
  for (const id of [server, client]) {
    const ca = new X509Certificate(id.ca);
    const leaf = new X509Certificate(id.cert);
    assert.ok(ca.ca && !leaf.ca, 'a CA and a leaf');
    assert.ok(leaf.checkIssued(ca) && leaf.verify(ca.publicKey), 'the leaf is signed by its CA');
    assert.ok(leaf.checkPrivateKey(await import('node:crypto').then((c) => c.createPrivateKey(id.key))), 'the key is the leaf\'s');
    assert.deepEqual(leaf.keyUsage, [id.role === 'server' ? '1.3.6.1.5.5.7.3.1' : '1.3.6.1.5.5.7.3.2'], 'TLS server / client purpose');
    assert.equal(checkPeerCa(id.ca, 'peer'), ca.fingerprint256);
    // Backdated a day: a peer whose clock is somewhat behind still accepts them.
    for (const x of [ca, leaf]) assert.ok(Date.parse(x.validFrom) < Date.now() - 23 * 3600_000 && Date.parse(x.validTo) > Date.now() + 24 * 3600_000, `${x.validFrom} – ${x.validTo}`);
  }
  assert.equal(new X509Certificate(server.cert).checkHost(MIGRATION_TLS_HOSTNAME), MIGRATION_TLS_HOSTNAME);
  assert.notEqual(new X509Certificate(server.ca).fingerprint256, new X509Certificate(client.ca).fingerprint256, 'one CA per identity');
  assert.throws(() => checkPeerCa(server.cert, 'host X'), (e: unknown) => isVmhostError(e, 'INVALID_ARGUMENT') && /host X's migration stream CA must be one CA/.test((e as Error).message));
  assert.throws(() => checkPeerCa(server.ca + client.ca, 'host X'), (e: unknown) => isVmhostError(e, 'INVALID_ARGUMENT'));
  assert.throws(() => checkPeerCa('not a certificate', 'host X'), (e: unknown) => isVmhostError(e, 'INVALID_ARGUMENT'));

  const dir = await mkdtemp(join(bed.dir, 'creds-'));
  await writeQemuCredentials(dir, server, client.ca);
  assert.deepEqual((await readdir(dir)).sort(), ['ca-cert.pem', 'dh-params.pem', 'server-cert.pem', 'server-key.pem']);
  for (const f of await readdir(dir)) assert.equal((await stat(join(dir, f))).mode & 0o777, 0o600, f);
  assert.equal(await readFile(join(dir, 'ca-cert.pem'), 'utf8'), server.ca + client.ca, 'both CAs of the move, nothing else');
});

test('two QEMUs migrate multifd+zstd over QEMU\'s TLS with the move\'s credentials; an impostor destination is refused', async () => {
  const [server, client, impostor] = await Promise.all([makeMoveIdentity('server'), makeMoveIdentity('client'), makeMoveIdentity('server')]);
  const tuning: MigrationTuning = { multifd: { channels: 2, compression: 'zstd' } };
  const creds = async (own: MoveTlsIdentity, peerCa: string) => {
    const dir = await mkdtemp(join(bed.dir, `${own.role}-`));
    await writeQemuCredentials(dir, own, peerCa);
    return { ...tuning, tls: { dir, hostname: MIGRATION_TLS_HOSTNAME } };
  };
  const src = bed.spec({ memoryStartupBytes: 128 << 20 }, 'tls-src');
  const s = await bed.start(src);
  const destination = async (sub: string, own: MoveTlsIdentity) => {
    const d = await bed.start({ ...src, paths: runtimePathsIn(join(bed.dir, sub)) }, { incoming: 'defer' });
    const port = await startIncoming(d.qmp, 'tcp:127.0.0.1:0', await creds(own, client.ca));
    assert.ok(port !== undefined && port > 0, 'QEMU listens on a port the kernel chose');
    return { d, uri: `tcp:127.0.0.1:${port}` };
  };
  // The source trusts its own CA and the one the destination answered (server's), not the impostor's.
  const toServer = await creds(client, server.ca);
  const fake = await destination('tls-impostor', impostor);
  await assert.rejects(migrateLive(s.qmp, fake.uri, toServer, { timeoutMs: 30_000 }), (e: unknown) => isVmhostError(e, 'QEMU_STATE_FAILED') && /known issuer/.test((e as Error).message));
  assert.equal((await s.qmp.execute('query-status')).status, 'running', 'the source runs on');
  assert.equal((await fake.d.qmp.execute('query-status')).status, 'inmigrate', 'the impostor got no state');
  assert.equal((await s.qmp.execute('query-migrate-parameters'))['tls-creds'], '', 'a failed TLS migration leaves the source plain (a save to a file must not try TLS)');

  const real = await destination('tls-dst', server);
  const r = await migrateLive(s.qmp, real.uri, await creds(client, server.ca), { timeoutMs: 60_000 });
  assert.equal((await s.qmp.execute('query-status')).status, 'postmigrate');
  for (const end = Date.now() + 15_000; Date.now() < end && (await real.d.qmp.execute('query-status')).status !== 'running';) await new Promise((x) => setTimeout(x, 50));
  assert.equal((await real.d.qmp.execute('query-status')).status, 'running');
  console.log(`# timing: multifd zstd over QEMU's TLS, 128 MiB idle: total ${r.totalTimeMs} ms, downtime ${r.downtimeMs} ms, ${r.transferredBytes} bytes`);
  await s.quit();
  await real.d.quit();
  fake.d.kill('SIGKILL');
});
