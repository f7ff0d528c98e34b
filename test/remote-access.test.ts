// Remote access (issue 16 item 11): a daemon listening off loopback speaks HTTPS only, with a
// self-signed certificate made on first start; the CLI pins its fingerprint on first use,
// refuses a changed one, and sends a -ComputerName host only the credential stored for it —
// never the local daemon's token.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, TestDaemon, runCli } from './support/daemon.ts';

describe('remote access', () => {
  let remote: TestDaemon; // the "other host": 0.0.0.0 with --allow-remote
  let local: TestDaemon; // this host's own daemon: loopback, plain HTTP
  let config: string; // the CLI's VMHOST_CONFIG_DIR (known_hosts, credentials.json)
  let recorder: Server; // a plain-HTTP host on loopback that records what it is sent
  const seen: IncomingHttpHeaders[] = [];
  let recorderName = '';

  before(async () => {
    [remote, local] = await Promise.all([TestDaemon.start(undefined, [], { remote: true }), TestDaemon.start()]);
    config = await mkdtemp(join(tmpdir(), 'vmhost-cfg-'));
    recorder = createServer((req, res) => {
      seen.push(req.headers);
      res.setHeader('content-type', 'application/json');
      res.end('[]');
    });
    await new Promise<void>((ok) => recorder.listen(0, '127.0.0.1', ok));
    recorderName = `127.0.0.1:${(recorder.address() as { port: number }).port}`;
  });
  after(async () => {
    await Promise.all([remote?.stop(), local?.stop()]);
    recorder?.close();
    if (config) await rm(config, { recursive: true, force: true });
  });

  // The CLI as an admin on this host runs it: the local daemon (and its token) is the default.
  const cli = (...args: string[]) => runCli(args, { VMHOST_DATA_DIR: local.dataDir, VMHOST_URL: '', VMHOST_TOKEN: '', VMHOST_CONFIG_DIR: config });
  const remoteName = () => `https://127.0.0.1:${remote.port}`;
  const remoteKey = () => `127.0.0.1:${remote.port}`;

  test('a non-loopback listener serves HTTPS only, with the certificate it made and printed', async () => {
    await assert.rejects(fetch(`http://127.0.0.1:${remote.port}/api/v1/host`), 'plain HTTP must not be answered');
    const crt = join(remote.dataDir, 'tls.crt');
    const opensslSays = execFileSync('openssl', ['x509', '-in', crt, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' }).trim().split('=')[1];
    assert.equal(remote.tlsFingerprint, opensslSays);
    assert.match(remote.output, new RegExp(`fingerprint ${opensslSays}`));
    for (const f of ['tls.crt', 'tls.key']) assert.equal((await stat(join(remote.dataDir, f))).mode & 0o777, 0o600, f);
    const host = await remote.api('GET', '/api/v1/host');
    assert.equal((host.json as { TlsCertificateFingerprint: string }).TlsCertificateFingerprint, opensslSays);
    // Loopback stays plain HTTP, with no certificate.
    assert.equal(((await local.api('GET', '/api/v1/host')).json as { TlsCertificateFingerprint: unknown }).TlsCertificateFingerprint, null);
    await assert.rejects(stat(join(local.dataDir, 'tls.crt')));
  });

  test('the local token never goes to another host: a -ComputerName gets only its own credential', async () => {
    const before = seen.length;
    const r = await cli('Get-VM', '-ComputerName', recorderName);
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /no credential stored for .*Set-VMHostCredential/);
    assert.equal(seen.length, before, 'nothing was sent to the host without a credential');

    assert.equal((await cli('Set-VMHostCredential', '-ComputerName', recorderName, '-Token', 'recorder-token')).code, 0);
    assert.equal((await cli('Get-VM', '-ComputerName', recorderName)).code, 0);
    assert.deepEqual(seen.slice(before).map((h) => h.authorization), ['Bearer recorder-token']);
    assert.ok(!seen.some((h) => h.authorization?.includes(local.token)), 'the local token was sent to another host');
    // Removing the credential makes the host ask for one again.
    assert.equal((await cli('Remove-VMHostCredential', '-ComputerName', recorderName)).code, 0);
    assert.equal((await cli('Get-VM', '-ComputerName', recorderName)).code, 5);
  });

  test('first use pins the certificate; Get-VM works with the stored credential', async () => {
    await rm(join(config, 'known_hosts'), { force: true });
    assert.equal((await cli('Set-VMHostCredential', '-ComputerName', remoteName(), '-Token', remote.token)).code, 0);
    assert.equal((await stat(join(config, 'credentials.json'))).mode & 0o777, 0o600);

    const first = await cli('New-VM', 'r1', '-MemoryStartupBytes', '256MB', '-ComputerName', remoteName());
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, new RegExp(`trusting ${remoteKey()} on first use: TLS certificate SHA-256 fingerprint ${remote.tlsFingerprint}`));
    assert.equal(await readFile(join(config, 'known_hosts'), 'utf8'), `${remoteKey()} ${remote.tlsFingerprint}\n`);

    const again = await cli('Get-VM', 'r1', '-Json', '-ComputerName', remoteName());
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stderr, '', 'a pinned host is not announced again');
    assert.equal((JSON.parse(again.stdout) as { Name: string }).Name, 'r1');
    const listed = JSON.parse((await cli('Get-VMHostCredential', '-Json')).stdout) as { ComputerName: string; TlsCertificateFingerprint: string }[];
    assert.deepEqual(listed, [{ ComputerName: remoteKey(), TlsCertificateFingerprint: remote.tlsFingerprint }]);
  });

  test('a credentials file others can read is refused', async () => {
    assert.equal((await cli('Set-VMHostCredential', '-ComputerName', remoteName(), '-Token', remote.token)).code, 0);
    const file = join(config, 'credentials.json');
    await chmod(file, 0o644);
    try {
      const r = await cli('Get-VM', '-ComputerName', remoteName());
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /credentials\.json must be a regular file only its owner can read .*chmod 600/);
    } finally {
      await chmod(file, 0o600);
    }
  });

  test('a changed certificate is refused until the old pin is removed', async () => {
    assert.equal((await cli('Set-VMHostCredential', '-ComputerName', remoteName(), '-Token', remote.token)).code, 0);
    assert.equal((await cli('Get-VM', '-ComputerName', remoteName())).code, 0); // pinned, if no test before did
    const old = remote.tlsFingerprint;
    await remote.terminate();
    await Promise.all(['tls.crt', 'tls.key'].map((f) => rm(join(remote.dataDir, f))));
    await remote.launch();
    assert.notEqual(remote.tlsFingerprint, old);

    const r = await cli('Get-VM', '-ComputerName', remoteName());
    assert.equal(r.code, 5);
    assert.match(r.stderr, new RegExp(`TLS certificate of ${remoteKey()} has changed \\(pinned ${old}, presented ${remote.tlsFingerprint}\\).*remove the line '${remoteKey()} …' from ${join(config, 'known_hosts')}`));
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one-line error');

    await writeFile(join(config, 'known_hosts'), '');
    const repinned = await cli('Get-VM', '-ComputerName', remoteName());
    assert.equal(repinned.code, 0, repinned.stderr);
    assert.match(repinned.stderr, /trusting .* on first use/);
  });

  test('an unreadable certificate stops the daemon with a clear error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vmhost-t-'));
    try {
      await writeFile(join(dir, 'tls.crt'), 'not a certificate\n');
      await writeFile(join(dir, 'tls.key'), 'not a key\n');
      const r = await new Promise<{ code: number | null; stderr: string }>((ok) => {
        execFile(join(ROOT, 'bin/vmhostd'), ['--data-dir', dir, '--listen', '0.0.0.0:1', '--allow-remote'], (e, _out, stderr) => ok({ code: e ? (e.code as number) : 0, stderr }));
      });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /tls\.crt is not a PEM certificate.*remove tls\.crt and tls\.key/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
