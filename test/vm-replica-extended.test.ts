// Hyper-V Replica beyond two hosts (issue 13): three daemons A → B → C. A's running test guest
// writes the pattern (support/replica-guest.ts) to a data disk replicated to B at 30 s (A's
// timer at 1/10). The initial copy goes on media (Start-VMInitialReplication -DestinationPath):
// a truncated and a damaged copy of it are refused by Import-VMInitialReplication with nothing
// written on B, the good one imported; the cycles after it carry exactly the records the guest
// wrote since the copy, and B then hashes like the guest's disk. A's
// -VSSSnapshotFrequencyHour 1 makes the first cycle's recovery point
// application-consistent (the agent froze the guest: the point's type on B) and the next ones
// crash-consistent with the reason. B extends its Replica VM to C at 300 s (B's timer at 1/100:
// 3 s; 30 s is refused there, as in Hyper-V); after a round of writes on A, once B holds A's
// point after the hold and C's cycle carried B's newest point, C's files hash like B's and like
// the guest's own disk (sha256), and C's cycle sent only the blocks the round wrote.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, open, readdir, rm, stat, truncate } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256OfDisk } from './support/disk-hash.ts';
import { TestDaemon, freePort, waitFor } from './support/daemon.ts';
import { install, issue, makeCa, trust, type TestCert } from './support/replica-certs.ts';
import { enableReplicaServer, isStateAt, readRateRecords, RECORD, startPatternGuest, startRateWriter } from './support/replica-guest.ts';

interface Point { Seq: number; Time: string; Consistency: string; Reason?: string }
interface Row { ReplicationMode: string; ReplicationRelationshipType?: string; LastReplicationTime: string | null; RecoveryPointDetails?: Point[]; ReplicationState: string }
interface Stats { SuccessfulReplicationCount: number; TotalReplicationSize: number; LastReplicationSize: number; ReplicationErrors: number; Health: string }

describe('Hyper-V Replica: extended replication, app-consistent points', () => {
  let a: TestDaemon, b: TestDaemon, c: TestDaemon, certs: string;
  let certA: TestCert, certB: TestCert;
  let portB: number, portC: number, replicasB: string;
  before(async () => {
    certs = await mkdtemp(join(tmpdir(), 'vmhost-replica-ext-'));
    const ca = await makeCa(certs, 'vmhost-test-ca');
    let certC: TestCert;
    [certA, certB, certC] = await Promise.all([
      issue(certs, 'primary-a.vmhost.test', ca), issue(certs, 'replica-b.vmhost.test', ca, ['127.0.0.1']), issue(certs, 'replica-c.vmhost.test', ca, ['127.0.0.1']),
    ]);
    [a, b, c] = await Promise.all([
      TestDaemon.start(undefined, ['--replication-timer-scale', '0.1']), TestDaemon.start(undefined, ['--replication-timer-scale', '0.01']), TestDaemon.start(),
    ]);
    for (const [d, cert] of [[a, certA], [b, certB], [c, certC]] as const) {
      await install(d.dataDir, cert, 'host');
      await trust(d.dataDir, ca);
    }
    [portB, portC] = [await freePort(), await freePort()];
    replicasB = await enableReplicaServer(b, portB, 'primary-a.vmhost.test');
    await enableReplicaServer(c, portC, 'replica-b.vmhost.test');
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
    await rm(certs, { recursive: true, force: true });
  });

  test('A → B with an app-consistent point, B → C extended: C equals B at a point', { timeout: 600_000 }, async () => {
    const g = await startPatternGuest(a, 'ext');
    await g.release(4);
    const enable = (d: TestDaemon, port: number, thumb: string, ...more: string[]) => d.cli('Enable-VMReplication', '-VMName', 'ext', '-ReplicaServerName', '127.0.0.1',
      '-ReplicaServerPort', String(port), '-AuthenticationType', 'Certificate', '-CertificateThumbprint', thumb, '-CompressionEnabled', '$true', ...more);
    const noHistory = await enable(a, portB, certA.thumbprint, '-ReplicationFrequencySec', '30', '-VSSSnapshotFrequencyHour', '1');
    assert.notEqual(noHistory.code, 0);
    assert.match(noHistory.stderr, /RecoveryHistory of 1 or more/);
    const on = await enable(a, portB, certA.thumbprint, '-ReplicationFrequencySec', '30', '-RecoveryHistory', '8', '-VSSSnapshotFrequencyHour', '1');
    assert.equal(on.code, 0, on.stderr);
    const rows = async (d: TestDaemon) => [JSON.parse(await d.ok('Get-VMReplication', '-VMName', 'ext', '-Json')) as Row | Row[]].flat();
    const replicaRow = async () => (await rows(b)).find((r) => r.ReplicationMode === 'Replica' && r.ReplicationRelationshipType === undefined)!;
    const aStats = async () => JSON.parse(await a.ok('Measure-VMReplication', '-VMName', 'ext', '-Json')) as Stats;
    const leaf = async (d: TestDaemon) => [JSON.parse(await d.ok('Get-VMHardDiskDrive', '-VMName', 'ext', '-Json')) as { Path: string } | Array<{ Path: string }>].flat()[0]!.Path;

    // The initial copy on media (-DestinationPath): A waits for its import; what the guest writes meanwhile waits in A's tracker.
    const media = join(certs, 'media');
    await a.ok('Start-VMInitialReplication', '-VMName', 'ext', '-DestinationPath', media);
    assert.equal((await rows(a))[0]!.ReplicationState, 'WaitingForInitialReplication');
    const copied = (await aStats()).TotalReplicationSize;
    const m0 = Number(await g.run('cat /tmp/n'));
    const m1 = await g.release(3);
    // A truncated copy and a damaged one are refused, and nothing of them is written on B.
    const [vmDir] = await readdir(media);
    const good = join(media, vmDir!, 'initial.vrep');
    const bad = join(certs, 'bad');
    const badFile = join(bad, vmDir!, 'initial.vrep');
    await cp(join(media, vmDir!), join(bad, vmDir!), { recursive: true });
    const { size } = await stat(good);
    await truncate(badFile, size - 1000);
    const truncated = await b.cli('Import-VMInitialReplication', '-VMName', 'ext', '-Path', bad);
    assert.notEqual(truncated.code, 0);
    assert.match(truncated.stderr, /is truncated: initial\.vrep holds \d+ bytes, the manifest says \d+/);
    await cp(good, badFile);
    const fh = await open(badFile, 'r+');
    const one = Buffer.alloc(1);
    await fh.read(one, 0, 1, size >> 1);
    one.writeUInt8(one.readUInt8(0) ^ 0xff);
    await fh.write(one, 0, 1, size >> 1);
    await fh.close();
    const damaged = await b.cli('Import-VMInitialReplication', '-VMName', 'ext', '-Path', bad);
    assert.notEqual(damaged.code, 0);
    assert.match(damaged.stderr, /is damaged: the sha256 of initial\.vrep is/);
    assert.notEqual((await b.cli('Get-VM', 'ext')).code, 0, 'no Replica VM from refused media');
    assert.deepEqual(await readdir(replicasB).catch(() => []), [], 'no replica files from refused media');
    await b.ok('Import-VMInitialReplication', '-VMName', 'ext', '-Path', media);
    assert.match((await b.cli('Import-VMInitialReplication', '-VMName', 'ext', '-Path', media)).stderr, /imported already/);

    // The first cycle froze the guest; the next ones are crash-consistent by schedule (the next freeze is an hour × 0.1 away).
    const points = await waitFor('two recovery points on B', 120_000, async () => {
      const p = (await replicaRow()).RecoveryPointDetails ?? [];
      return p.length >= 2 ? p : undefined;
    });
    // The cycles after the import carried what the guest wrote after the copy was taken, and B now equals the guest's disk.
    assert.equal((await rows(a))[0]!.ReplicationState, 'Replicating');
    assert.equal((await aStats()).ReplicationErrors, 0, 'the ticks before the import waited, they did not fail');
    assert.equal((await aStats()).TotalReplicationSize - copied, (m1 - m0) * RECORD, 'the cycles after the media sent only the blocks written since the copy');
    assert.equal(await sha256OfDisk(await leaf(b)), await g.sha(), 'B equals the guest\'s disk after the media and a cycle');
    console.log(`B's recovery points: ${points.map((p) => `${p.Seq} ${p.Consistency}${p.Reason ? ` (${p.Reason})` : ''}`).join('; ')}`);
    assert.equal(points[0]!.Seq, 1);
    assert.equal(points[0]!.Consistency, 'ApplicationConsistent', 'the agent froze the guest for the first cycle');
    assert.equal(points[1]!.Consistency, 'CrashConsistent');
    assert.match(points[1]!.Reason!, /one every 1 h/);

    // Extended: only 300 or 900 s from a replica, then B's Replica VM goes on to C.
    const fast = await enable(b, portC, certB.thumbprint, '-ReplicationFrequencySec', '30');
    assert.notEqual(fast.code, 0);
    assert.match(fast.stderr, /extended replication runs every 300 or 900 seconds/);
    const ext = await enable(b, portC, certB.thumbprint, '-ReplicationFrequencySec', '300', '-RecoveryHistory', '1');
    assert.equal(ext.code, 0, ext.stderr);
    await b.ok('Start-VMInitialReplication', '-VMName', 'ext');
    const onC = JSON.parse(await c.ok('Get-VM', 'ext', '-Json')) as { State: string; ReplicationMode: string };
    assert.equal(onC.ReplicationMode, 'Replica');
    assert.equal(onC.State, 'Off');
    const extRow = async () => (await rows(b)).find((r) => r.ReplicationRelationshipType === 'Extended')!;
    assert.equal((await extRow()).ReplicationState, 'Replicating');
    const bStats = async () => JSON.parse(await b.ok('Measure-VMReplication', '-VMName', 'ext', '-Json')) as Stats;
    const before = await bStats();

    // A round of writes; then A's point after the hold reaches B, A stops, and C's cycle carries B's newest point.
    const n0 = Number(await g.run('cat /tmp/n'));
    const n = await g.release(6);
    const sha = await g.sha();
    const held = new Date();
    await waitFor('A\'s cycle after the hold on B', 120_000, async () => {
      const t = (await replicaRow()).LastReplicationTime;
      return t !== null && new Date(t) > held;
    });
    await a.ok('Suspend-VMReplication', '-VMName', 'ext');
    const bLast = (await replicaRow()).LastReplicationTime;
    await waitFor('C\'s cycle with B\'s newest point', 120_000, async () => (await extRow()).LastReplicationTime === bLast);
    await b.ok('Suspend-VMReplication', '-VMName', 'ext');
    const [shaB, shaC] = [await sha256OfDisk(await leaf(b)), await sha256OfDisk(await leaf(c))];
    assert.equal(shaB, sha, 'B equals the guest\'s disk at the hold');
    assert.equal(shaC, shaB, 'C equals B at B\'s newest point');
    const after = await bStats();
    const sent = after.TotalReplicationSize - before.TotalReplicationSize;
    console.log(`extended B → C: ${after.SuccessfulReplicationCount - before.SuccessfulReplicationCount} cycles sent ${sent} bytes for ${n - n0} records of ${RECORD} bytes (Health ${after.Health})`);
    assert.equal(sent, (n - n0) * RECORD, 'C\'s cycles carried the blocks B\'s points wrote, not the disk');

    // Continuous (-ReplicationFrequencySec 1) A → B while the guest writes 10 MiB/s; SIGKILL A's daemon and QEMU once
    // enough has been written and shipped; the RPO is the guest-time gap between the newest record on A's disk and on B's.
    await a.ok('Remove-VMReplication', '-VMName', 'ext');
    const cont = await enable(a, portB, certA.thumbprint, '-ReplicationFrequencySec', '1', '-RecoveryHistory', '2');
    assert.equal(cont.code, 0, cont.stderr);
    await a.ok('Start-VMInitialReplication', '-VMName', 'ext');
    await startRateWriter(g, 10);
    const rate = async () => (await g.run('cat /tmp/cn; cut -d" " -f1 /proc/uptime')).split(/\s+/).map(Number) as [number, number];
    const [c1, u1] = await waitFor('20 records written', 240_000, async () => { const r = await rate(); return r[0] >= 20 ? r : undefined; });
    const shipped = (await aStats()).SuccessfulReplicationCount;
    await waitFor('5 more shipments', 120_000, async () => (await aStats()).SuccessfulReplicationCount >= shipped + 5);
    const [c2, u2] = await rate();
    const health = (await aStats()).Health;
    await a.kill();
    for (const pid of await a.qemuPids()) process.kill(pid, 'SIGKILL');
    const onA = await readRateRecords(g.disk, true);
    const onB = await readRateRecords(await leaf(b));
    assert.ok(onA.newest && onB.newest, `records on both: A ${onA.slots.join(' ')}; B ${onB.slots.join(' ')}`);
    const rpo = onA.newest.t - onB.newest.t;
    console.log(`continuous: the guest wrote ${((c2 - c1) / (u2 - u1)).toFixed(1)} MiB/s; at the kill A's newest record is ${onA.newest.seq}, B's ${onB.newest.seq}: RPO ${rpo.toFixed(2)} s `
      + `(Health ${health}; ${(await replicaRow()).RecoveryPointDetails?.length ?? 0} recovery points on B) — load ${loadavg()[0]!.toFixed(1)}`);
    assert.ok(onB.newest.seq <= onA.newest.seq);
    assert.ok(isStateAt(onB, onB.newest.seq), `B holds the disk as it was at record ${onB.newest.seq}: ${onB.slots.join(' ')}`);
  });
});
