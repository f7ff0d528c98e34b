// Hyper-V Replica between two daemons (issue 13). A test CA (openssl) signs the Replica server
// B's certificate, the primary A's, and an intruder's; a rogue certificate is self-signed. B
// allows only A's name. A running test guest writes a pattern (a 64 KiB record per write: its
// sequence number and time, then random bytes) to a 64 MiB data disk; Enable-VMReplication
// A→B at 30 s (A's daemon runs its cycle timer at 1/10: vmhostd --replication-timer-scale, the
// cmdlet still takes only 30/300/900), Start-VMInitialReplication registers the replica Off on
// B, then rounds: the writer runs for a few writes and is held (the VM runs on), the guest's
// own sha256 of the disk is the reference, and once a cycle whose point is after the hold has
// arrived, replication is suspended and B's newest recovery point must hash the same. The
// bytes the cycles sent must be what the guest wrote (its writes × 64 KiB, not the disk's
// size); recovery points accumulate to RecoveryHistory (2) and no more. In the third round the
// Replica server is disabled while the guest writes: cycles fail (Health Warning, then Critical),
// their takes are restored, and once it is back the next cycle carries exactly those blocks. The intruder and the
// rogue certificate are refused with their reasons.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256OfDisk } from './support/disk-hash.ts';
import { TestDaemon, freePort, waitFor } from './support/daemon.ts';
import { install, issue, makeCa, trust, type TestCert } from './support/replica-certs.ts';
import { enableReplicaServer, RECORD, startPatternGuest } from './support/replica-guest.ts';

interface Replication { VMName: string; ReplicationState: string; ReplicationHealth: string; ReplicationMode: string; LastReplicationTime: string | null; RecoveryPoints: number; ReplicaStorageLocation?: string }
interface Stats { SuccessfulReplicationCount: number; TotalReplicationSize: number; LastReplicationSize: number; LastTransferredSize: number; AverageReplicationSize: number; MissedReplicationCount: number; ReplicationErrors: number; Health: string }

describe('Hyper-V Replica', () => {
  let a: TestDaemon, b: TestDaemon, certs: string;
  let ca: TestCert, certA: TestCert, certB: TestCert, intruder: TestCert, rogue: TestCert;
  let port: number;
  before(async () => {
    certs = await mkdtemp(join(tmpdir(), 'vmhost-replica-certs-'));
    ca = await makeCa(certs, 'vmhost-test-ca');
    [certA, certB, intruder, rogue] = await Promise.all([
      issue(certs, 'primary-a.vmhost.test', ca), issue(certs, 'replica-b.vmhost.test', ca, ['127.0.0.1']),
      issue(certs, 'intruder.other.test', ca), issue(await mkdtemp(join(certs, 'rogue-')), 'primary-a.vmhost.test', undefined),
    ]);
    [a, b] = await Promise.all([TestDaemon.start(undefined, ['--replication-timer-scale', '0.1']), TestDaemon.start()]);
    await install(a.dataDir, certA, 'primary');
    await install(a.dataDir, intruder, 'intruder');
    await install(a.dataDir, rogue, 'rogue');
    await trust(a.dataDir, ca);
    await install(b.dataDir, certB, 'server');
    await trust(b.dataDir, ca);
    port = await freePort();
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await rm(certs, { recursive: true, force: true });
  });

  test('Replica server: authorization, refusals with their reasons', async () => {
    await enableReplicaServer(b, port, 'primary-a.vmhost.test');
    const server = JSON.parse(await b.ok('Get-VMReplicationServer', '-Json')) as { ReplicationEnabled: boolean; ListeningPort: number };
    assert.equal(server.ReplicationEnabled, true);
    assert.equal(server.ListeningPort, port);
    assert.deepEqual((JSON.parse(await b.ok('Get-VMReplicationAuthorizationEntry', '-Json')) as Array<{ AllowedPrimaryServer: string }>).map((e) => e.AllowedPrimaryServer), ['primary-a.vmhost.test']);

    const conn = (thumb: string) => a.cli('Test-VMReplicationConnection', '-ReplicaServerName', '127.0.0.1', '-ReplicaServerPort', String(port), '-AuthenticationType', 'Certificate', '-CertificateThumbprint', thumb);
    const good = await conn(certA.thumbprint);
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /succeeded/);
    const unknown = await conn(intruder.thumbprint);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /'intruder\.other\.test' is not authorized to replicate to this server/);
    const wrong = await conn(rogue.thumbprint);
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /primary's certificate .* is not trusted by this Replica server/);
    console.log(`refused: ${unknown.stderr.trim()}\nrefused: ${wrong.stderr.trim()}`);
    // The primary checks the server too: B's certificate names 127.0.0.1, not localhost.
    const name = await a.cli('Test-VMReplicationConnection', '-ReplicaServerName', 'localhost', '-ReplicaServerPort', String(port), '-CertificateThumbprint', certA.thumbprint);
    assert.notEqual(name.code, 0);
    assert.match(name.stderr, /presented a certificate this host does not trust/);
  });

  test('initial replication, cycles of changed blocks, recovery points up to RecoveryHistory, B equals A at each point', { timeout: 600_000 }, async () => {
    const g = await startPatternGuest(a, 'rep');
    const { release, run: guest, dev } = g;
    // A few records before the initial replication, so its full copy has data to carry.
    let n = Number(await release(4));

    await a.ok('Enable-VMReplication', '-VMName', 'rep', '-ReplicaServerName', '127.0.0.1', '-ReplicaServerPort', String(port), '-AuthenticationType', 'Certificate',
      '-CertificateThumbprint', certA.thumbprint, '-ReplicationFrequencySec', '30', '-RecoveryHistory', '2', '-CompressionEnabled', '$true');
    const bad = await a.cli('Enable-VMReplication', '-VMName', 'rep', '-ReplicaServerName', '127.0.0.1', '-ReplicaServerPort', String(port), '-ReplicationFrequencySec', '60');
    assert.notEqual(bad.code, 0, 'only 30, 300 and 900 are frequencies');
    const t0 = Date.now();
    await a.ok('Start-VMInitialReplication', '-VMName', 'rep');
    const stats = async () => (JSON.parse(await a.ok('Measure-VMReplication', '-VMName', 'rep', '-Json')) as Stats);
    const initial = await stats();
    // Cycles may already have run (the writer is held: they carry nothing), so the total, not the last size.
    console.log(`initial replication in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${initial.TotalReplicationSize} bytes of data (of a 64 MiB disk)`);
    assert.equal(initial.TotalReplicationSize, n * RECORD, 'the initial copy carries the disk\'s data, not its size');
    const onB = JSON.parse(await b.ok('Get-VM', 'rep', '-Json')) as { State: string; ReplicationMode: string; Id: string };
    assert.equal(onB.State, 'Off');
    assert.equal(onB.ReplicationMode, 'Replica');
    assert.equal(onB.Id, (JSON.parse(await a.ok('Get-VM', 'rep', '-Json')) as { Id: string }).Id, 'the replica keeps the VM id');
    const start = await b.cli('Start-VM', 'rep');
    assert.notEqual(start.code, 0);
    assert.match(start.stderr, /Replica VM: it starts only after a failover/);

    const replicaOnB = async () => (JSON.parse(await b.ok('Get-VMReplication', '-VMName', 'rep', '-Json')) as Replication[] | Replication);
    let before = initial;
    for (let round = 1; round <= 3; round++) {
      // Round 3 writes while the Replica server is away: cycles fail, their takes are restored, Health turns.
      const outage = round === 3;
      if (outage) await b.ok('Set-VMReplicationServer', '-ReplicationEnabled', '$false');
      // Release the writer for 6 more records, hold it, hash the disk in the guest: A's state at the hold.
      const nText = await release(6);
      const sha = (await guest(`dd if=/dev/${dev} bs=1M iflag=direct 2>/dev/null | sha256sum`)).split(/\s+/)[0]!;
      let held = new Date();
      if (outage) {
        const failing = await waitFor('a failed cycle', 120_000, async () => {
          const m = await stats();
          return m.ReplicationErrors > before.ReplicationErrors && m.Health !== 'Normal' ? m : undefined;
        });
        console.log(`round ${round}: Replica server away: ${failing.ReplicationErrors - before.ReplicationErrors} failed cycles, Health ${failing.Health}: ${(JSON.parse(await a.ok('Get-VMReplication', '-VMName', 'rep', '-Json')) as { LastError: string }).LastError}`);
        await b.ok('Set-VMReplicationServer', '-ReplicationEnabled', '$true');
        held = new Date();
      }
      const written = Number(nText) - n;
      n = Number(nText);
      // A cycle whose point is after the hold carries the held state; then no new cycle starts.
      await waitFor('a cycle after the hold', 120_000, async () => {
        const r = JSON.parse(await a.ok('Get-VMReplication', '-VMName', 'rep', '-Json')) as Replication;
        return r.LastReplicationTime !== null && new Date(r.LastReplicationTime) > held;
      });
      await a.ok('Suspend-VMReplication', '-VMName', 'rep');
      const now = await stats();
      const sent = now.TotalReplicationSize - before.TotalReplicationSize;
      console.log(`round ${round}: the guest wrote ${written} records (${written * RECORD} bytes); ${now.SuccessfulReplicationCount - before.SuccessfulReplicationCount} cycles sent ${sent} bytes of changed blocks `
        + `(last ${now.LastReplicationSize}, ${now.LastTransferredSize} on the wire; average ${now.AverageReplicationSize}), missed ${now.MissedReplicationCount}, errors ${now.ReplicationErrors}`);
      // Each record is one whole 64 KiB block, and 6-record rounds never reach the same block twice: exactly what was
      // written — after an outage too (the failed cycles' blocks went with the first cycle that got through).
      assert.equal(sent, written * RECORD, 'the cycles sent the blocks the guest wrote, not the disk');
      assert.equal(now.Health, 'Normal');
      const rb = [await replicaOnB()].flat()[0]!;
      assert.equal(rb.ReplicationMode, 'Replica');
      assert.ok(rb.RecoveryPoints <= 2, `at most RecoveryHistory points (${rb.RecoveryPoints})`);
      const vhd = JSON.parse(await b.ok('Get-VMHardDiskDrive', '-VMName', 'rep', '-Json')) as Array<{ Path: string }> | { Path: string };
      const leaf = [vhd].flat()[0]!.Path;
      assert.equal(await sha256OfDisk(leaf), sha, `round ${round}: B's newest recovery point equals A's disk at the hold`);
      const files = (await readdir(rb.ReplicaStorageLocation!)).filter((f) => f.endsWith('.avhdx'));
      console.log(`round ${round}: B holds ${rb.RecoveryPoints} recovery points (${files.join(', ')}), leaf ${leaf}`);
      assert.equal(files.length, rb.RecoveryPoints);
      if (round >= 2) assert.equal(rb.RecoveryPoints, 2, 'points accumulated to RecoveryHistory');
      before = now;
      if (round < 3) await a.ok('Resume-VMReplication', '-VMName', 'rep');
    }
    const r = JSON.parse(await a.ok('Get-VMReplication', '-VMName', 'rep', '-Json')) as Replication & { ReplicationFrequencySec: number };
    assert.equal(r.ReplicationMode, 'Primary');
    assert.equal(r.ReplicationState, 'Suspended');
    assert.equal(r.ReplicationFrequencySec, 30);
    await a.ok('Reset-VMReplicationStatistics', '-VMName', 'rep');
    assert.equal((await stats()).SuccessfulReplicationCount, 0);
    await a.ok('Resume-VMReplication', '-VMName', 'rep');
    assert.equal((JSON.parse(await a.ok('Get-VM', 'rep', '-Json')) as { ReplicationState: string }).ReplicationState, 'Replicating');
    await a.ok('Remove-VMReplication', '-VMName', 'rep');
    assert.equal((JSON.parse(await a.ok('Get-VM', 'rep', '-Json')) as { ReplicationMode: string }).ReplicationMode, 'None');
    await a.ok('Stop-VM', 'rep', '-TurnOff');
  });
});
