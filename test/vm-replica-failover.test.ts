// Hyper-V Replica failover between two daemons (issue 13): a guest on A writes a pattern (record
// i in the i-th 64 KiB block of its data disk, a few a second) while A replicates it to B at 30 s
// (both daemons run their cycle timers at 1/20: a 1.5 s interval), RecoveryHistory 2. In order, on
// one VM:
// (c) test failover: Start-VMFailover -AsTest on B makes "rep - Test" on the newest point; it
//     boots while A's cycles keep arriving (one arrives during it: its merges wait, so the
//     points pile up past RecoveryHistory), and Stop-VMFailover removes it, its files, and runs
//     the merges that waited;
// (b) planned: the writer stopped and the guest shut down on A, Start-VMFailover -Prepare sends
//     the last changes (PreparedForFailover), Start-VMFailover on B, Set-VMReplication -Reverse
//     (A becomes B's replica, only the changes since the failover to go), Start-VM on B: every
//     record A wrote is there (zero loss); B → A cycles run and carry only what B's guest writes;
// (a) unplanned: now B is the primary, its guest writing; after a counted number of B → A
//     cycles B's daemon and QEMUs are SIGKILLed; on A, Start-VMFailover to the newest point,
//     Start-VM: the records are complete up to the point; the data lost (the kill's moment minus
//     the point's) is printed; Complete-VMFailover.
// Illegal steps are refused with their reasons (and typed codes) along the way. The default suite
// boots the guest three times (A, B after the planned failover, A after the unplanned one);
// VMHOST_LONG=1 also boots the test VM (its pattern checked) and the completed VM once more, and
// (a′) brings B's daemon back and reverses once more: B was not prepared, so its disks become A's
// replica as they are and A's relationship waits for Resume-VMReplication -Resynchronize, which
// sends only the blocks that differ (sha256 equal; test/vm-replica-resync.test.ts does this in the
// default suite).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256OfDisk } from './support/disk-hash.ts';
import { waitFor, type TestDaemon } from './support/daemon.ts';
import { PatternGuest, startReplicaPair, type ReplicaPair } from './support/replica-pair.ts';

const SCALE = 0.05;
const INTERVAL_S = 30 * SCALE;
const RECORD = 64 * 1024;
const RECOVERY_HISTORY = 2;
const LONG = process.env.VMHOST_LONG === '1';

interface Vm { Name: string; Id: string; State: string; ReplicationMode: string; ReplicationState: string }
interface Rep { ReplicationMode: string; ReplicationState: string; RecoveryPoints: number; LastReplicationTime: string | null; ReplicaStorageLocation?: string }
interface Stats { SuccessfulReplicationCount: number; LastReplicationSize: number; TotalReplicationSize: number }
interface Snap { Name: string; Id: string; SnapshotType: string }

const one = <T>(x: T | T[]): T => [x].flat()[0] as T;

describe('Hyper-V Replica failover', () => {
  let pair: ReplicaPair;
  let a: TestDaemon, b: TestDaemon;
  let onA: PatternGuest;
  before(async () => {
    pair = await startReplicaPair({ timerScale: SCALE, reverse: true });
    ({ a, b } = pair);
  });
  after(async () => { await pair?.stop(); });

  const vm = async (d: TestDaemon, name = 'rep') => JSON.parse(await d.ok('Get-VM', name, '-Json')) as Vm;
  const rep = async (d: TestDaemon) => one(JSON.parse(await d.ok('Get-VMReplication', '-VMName', 'rep', '-Json')) as Rep | Rep[]);
  // Through the API: it is polled, and a CLI call per poll costs a node start on a loaded machine.
  const stats = async (d: TestDaemon) => one((await d.api('GET', '/api/v1/replication/statistics?VMName=rep')).json as Stats | Stats[]);
  const refused = async (d: TestDaemon, re: RegExp, ...args: string[]) => {
    const r = await d.cli(...args);
    assert.notEqual(r.code, 0, `${args.join(' ')} must be refused`);
    assert.match(r.stderr, re);
    return r.stderr.trim();
  };
  /** Cycles after `n` successful ones have been acknowledged. */
  const cyclesPast = (d: TestDaemon, n: number) => waitFor(`cycle ${n + 1}`, 120_000, async () => {
    const s = await stats(d);
    return s.SuccessfulReplicationCount > n ? s : undefined;
  });

  test('replication A → B of a writing guest', { timeout: 600_000 }, async () => {
    const disk = join(a.dataDir, 'rep-data.vhdx');
    await a.ok('New-VHD', '-Path', disk, '-SizeBytes', '64MB', '-Dynamic', '-BlockSizeBytes', '1MB');
    await a.ok('New-VM', 'rep', '-MemoryStartupBytes', '256MB', '-Generation', '2');
    await a.ok('Add-VMHardDiskDrive', '-VMName', 'rep', '-Path', disk, '-ControllerType', 'SCSI');
    await a.ok('Start-VM', 'rep');
    onA = await PatternGuest.boot(a, 'rep');
    await onA.startWriting(0);
    await a.ok('Enable-VMReplication', '-VMName', 'rep', '-ReplicaServerName', '127.0.0.1', '-ReplicaServerPort', String(pair.portB), '-AuthenticationType', 'Certificate',
      '-CertificateThumbprint', pair.certA.thumbprint, '-ReplicationFrequencySec', '30', '-RecoveryHistory', String(RECOVERY_HISTORY), '-CompressionEnabled', '$true');
    await a.ok('Start-VMInitialReplication', '-VMName', 'rep');
    await cyclesPast(a, 2);
    console.log(`replicating: ${(await stats(a)).SuccessfulReplicationCount} points sent, guest at record ${await onA.written()}`);
    const points = JSON.parse(await b.ok('Get-VMSnapshot', '-VMName', 'rep', '-Json')) as Snap[];
    assert.ok(points.length >= 2 && points.every((p) => p.SnapshotType === 'Replica'), `the recovery points as snapshots: ${JSON.stringify(points.map((p) => p.Name))}`);
    console.log(`recovery points on B: ${points.map((p) => p.Name).join(', ')}`);
    // Illegal steps: the primary fails over only with -Prepare (and only off); the replica completes only a failover; it starts only failed over.
    console.log(`refused: ${await refused(a, /Start-VMFailover runs on the Replica server/, 'Start-VMFailover', '-VMName', 'rep')}`);
    console.log(`refused: ${await refused(a, /shut it down before Start-VMFailover -Prepare/, 'Start-VMFailover', '-VMName', 'rep', '-Prepare')}`);
    console.log(`refused: ${await refused(b, /no failover to complete/, 'Complete-VMFailover', '-VMName', 'rep')}`);
    console.log(`refused: ${await refused(b, /starts only after a failover/, 'Start-VM', 'rep')}`);
    // The same refusals carry their typed codes through the API.
    const codeOf = async (d: TestDaemon, path: string, body?: unknown) => {
      const r = await d.api('POST', path, body);
      return `${r.status} ${String((r.json as { code?: string }).code)}`;
    };
    assert.equal(await codeOf(a, '/api/v1/vms/rep/failover', {}), '409 REPLICATION_FAILOVER_STATE');
    assert.equal(await codeOf(b, '/api/v1/vms/rep/failover/complete'), '409 REPLICATION_FAILOVER_STATE');
    assert.equal(await codeOf(b, '/api/v1/vms/rep/start'), '409 REPLICATION_VM_IS_REPLICA');
  });

  test('(c) test failover: a test VM boots on a point while cycles arrive; Stop-VMFailover removes it', { timeout: 600_000 }, async () => {
    // The newest point, asked for by name. Cycles keep arriving every 1.5 s and merge the oldest beyond
    // RecoveryHistory 2: on a loaded machine the named point can be merged away before the call lands
    // (refused: "no recovery point"); then the newest one is named again.
    let chosen: Snap | undefined;
    for (let attempt = 1; !chosen; attempt++) {
      const newest = (JSON.parse(await b.ok('Get-VMSnapshot', '-VMName', 'rep', '-Json')) as Snap[]).at(-1)!;
      try {
        await b.ok('Start-VMFailover', '-VMName', 'rep', '-AsTest', '-VMRecoverySnapshot', newest.Name);
        chosen = newest;
      } catch (e) {
        if (attempt >= 5 || !/no recovery point/.test((e as Error).message)) throw e;
      }
    }
    const t = await vm(b, 'rep - Test');
    assert.equal(t.ReplicationMode, 'TestReplica');
    assert.notEqual(t.Id, (await vm(b)).Id);
    const adapters = [JSON.parse(await b.ok('Get-VMNetworkAdapter', '-VMName', 'rep - Test', '-Json'))].flat() as Array<{ SwitchName: string | null }>;
    assert.ok(adapters.every((x) => !x.SwitchName), 'the test VM\'s adapters are not connected');
    const sent = (await stats(a)).SuccessfulReplicationCount;
    let booted = 'made';
    if (LONG) {
      await b.ok('Start-VM', 'rep - Test');
      const seen = await (await PatternGuest.boot(b, 'rep - Test')).records();
      assert.ok(seen.complete && seen.count > 0, `the test VM holds the pattern up to its point (${seen.count} records)`);
      booted = `booted with ${seen.count} records`;
    }
    // Replication goes on under the test: cycles arrive after it started (the second one's commit surely after it);
    // their merges wait.
    await cyclesPast(a, sent + 1);
    const during = await rep(b);
    console.log(`test failover: "rep - Test" on ${chosen.Name} ${booted}; ${during.RecoveryPoints} points kept meanwhile (RecoveryHistory ${RECOVERY_HISTORY}: merges wait)`);
    assert.ok(during.RecoveryPoints > RECOVERY_HISTORY, 'cycles arrived during the test and their merges waited');
    console.log(`refused: ${await refused(b, /test failover is already running/, 'Start-VMFailover', '-VMName', 'rep', '-AsTest')}`);
    await b.ok('Stop-VMFailover', '-VMName', 'rep');
    assert.equal((await b.cli('Get-VM', 'rep - Test')).code === 0, false, 'the test VM is gone');
    // The merges that waited run now, or with the next point when one was arriving.
    const after = await waitFor('the merges that waited', 120_000, async () => {
      const r = one((await b.api('GET', '/api/v1/replication?VMName=rep')).json as Rep | Rep[]);
      return r.RecoveryPoints <= RECOVERY_HISTORY ? r : undefined;
    });
    assert.deepEqual((await readdir(join(after.ReplicaStorageLocation!, 'test'))), [], 'the test VM\'s files are gone');
  });

  test('(b) planned failover: nothing lost; Reverse; B → A cycles carry only the changes', { timeout: 600_000 }, async () => {
    const written = await onA.stopWriting();
    await a.ok('Stop-VM', 'rep');
    await a.ok('Start-VMFailover', '-VMName', 'rep', '-Prepare');
    assert.equal((await rep(a)).ReplicationState, 'PreparedForFailover');
    await b.ok('Start-VMFailover', '-VMName', 'rep');
    const failed = await vm(b);
    assert.equal(failed.ReplicationState, 'FailedOverWaitingCompletion');
    await b.ok('Set-VMReplication', '-VMName', 'rep', '-Reverse', '-ReplicaServerName', '127.0.0.1', '-ReplicaServerPort', String(pair.portA));
    const [bNow, aNow] = [await rep(b), await rep(a)];
    assert.deepEqual([bNow.ReplicationMode, bNow.ReplicationState], ['Primary', 'Replicating'], 'B is the primary, only the changes to go');
    assert.deepEqual([aNow.ReplicationMode, aNow.ReplicationState], ['Replica', 'Replicating'], 'A is the replica');
    console.log(`refused: ${await refused(a, /starts only after a failover/, 'Start-VM', 'rep')}`);
    await b.ok('Start-VM', 'rep');
    const onB = await PatternGuest.boot(b, 'rep');
    const got = await onB.records();
    console.log(`planned failover: A wrote ${written} records, B holds ${got.count} (complete: ${got.complete})`);
    assert.ok(got.complete);
    assert.equal(got.count, written, 'zero loss: every record A wrote is on B');
    // B → A before B's guest writes: a cycle carries what the VM wrote since the failover (its boot wrote nothing to
    // the data disk), not a full copy, which holds A's records.
    const first = await cyclesPast(b, 0);
    console.log(`B → A before writing: ${first.SuccessfulReplicationCount} cycles, ${first.TotalReplicationSize} bytes (a full copy: ≥ ${written * RECORD})`);
    assert.ok(first.TotalReplicationSize < written * RECORD, 'reverse replication started from the changed blocks, not a full copy');
    const resyncs = ((await b.api('GET', '/api/v1/events?limit=500')).json as Array<{ Code?: string; Message: string }>).filter((e) => e.Code === 'VM_REPLICATION_RESYNCHRONIZED');
    assert.deepEqual(resyncs.map((e) => e.Message), [], 'no cycle sent whole drives');
    // B's guest writes on; the next cycles carry those records' blocks.
    await onB.startWriting(written);
    const s = await cyclesPast(b, first.SuccessfulReplicationCount + 1); // the second one's point came after the writer started
    const wroteOnB = await onB.written() - written;
    console.log(`B → A while writing: ${s.SuccessfulReplicationCount} cycles, ${s.TotalReplicationSize - first.TotalReplicationSize} bytes of changed blocks since (B's guest wrote ${wroteOnB} records of ${RECORD} bytes by now)`);
    assert.ok(s.TotalReplicationSize > first.TotalReplicationSize, 'the records B writes reach A');
    // At most one record more: the one being written when the count was read.
    assert.ok(s.TotalReplicationSize - first.TotalReplicationSize <= (wroteOnB + 1) * RECORD, 'only the blocks B\'s guest wrote');
    Object.assign(pair, { onB });
  });

  test('(a) unplanned failover: the primary SIGKILLed after counted cycles; the replica fails over to its newest point', { timeout: 600_000 }, async () => {
    const onB = (pair as ReplicaPair & { onB: PatternGuest }).onB;
    // B is the primary now: kill it as soon as two more cycles were acknowledged. The second one's point was taken
    // after the first was done, so after `writtenBefore` was read.
    const qemus = await b.qemuPids();
    const n = (await stats(b)).SuccessfulReplicationCount;
    const writtenBefore = await onB.written();
    await cyclesPast(b, n + 1);
    await b.kill();
    const killedAt = Date.now();
    for (const pid of qemus) process.kill(pid, 'SIGKILL');
    const points = JSON.parse(await a.ok('Get-VMSnapshot', '-VMName', 'rep', '-Json')) as Snap[];
    const latest = points.at(-1)!;
    await a.ok('Start-VMFailover', '-VMName', 'rep', '-VMRecoverySnapshot', latest.Name);
    assert.equal((await vm(a)).ReplicationState, 'FailedOverWaitingCompletion');
    await a.ok('Start-VM', 'rep');
    const onA2 = await PatternGuest.boot(a, 'rep');
    const got = await onA2.records();
    const lossS = (killedAt - Date.parse(latest.Name)) / 1000;
    console.log(`unplanned failover to ${latest.Name}: ${got.count} records (complete: ${got.complete}; B had written ${writtenBefore} two cycles before the kill); data loss ${lossS.toFixed(1)} s `
      + `(the kill's moment minus the point's; interval ${INTERVAL_S} s), the last record's guest time ${(killedAt / 1000 - got.times.at(-1)!).toFixed(0)} s before the kill`);
    assert.ok(got.complete, 'the records are complete up to the point');
    assert.ok(got.count >= writtenBefore, 'the newest point holds what was written before the cycle ahead of it');
    await a.ok('Stop-VM', 'rep', '-TurnOff');
    await a.ok('Complete-VMFailover', '-VMName', 'rep');
    const done = await vm(a);
    assert.equal(done.ReplicationState, 'FailedOver');
    console.log(`refused: ${await refused(a, /already complete/, 'Complete-VMFailover', '-VMName', 'rep')}`);
    const drives = [JSON.parse(await a.ok('Get-VMHardDiskDrive', '-VMName', 'rep', '-Json'))].flat() as Array<{ Path: string }>;
    console.log(`completed: the VM's disk ${drives[0]!.Path}`);
    if (!LONG) return;
    await a.ok('Start-VM', 'rep');
    const again = await (await PatternGuest.boot(a, 'rep')).records();
    assert.equal(again.count, got.count, 'the completed VM holds the point\'s records');
  });

  test('(a′) reverse after the unplanned failover: the old primary, back, is resynchronized by block comparison', { timeout: 600_000, skip: !LONG && 'VMHOST_LONG=1 only: a daemon restart and a resynchronization' }, async () => {
    if ((await vm(a)).State !== 'Off') await a.ok('Stop-VM', 'rep', '-TurnOff');
    await b.launch(); // its QEMU died with it: the VM is Off
    await waitFor('B\'s VM off', 60_000, async () => (await vm(b)).State === 'Off');
    await a.ok('Set-VMReplication', '-VMName', 'rep', '-Reverse', '-ReplicaServerName', '127.0.0.1', '-ReplicaServerPort', String(pair.portB));
    const r = await rep(a);
    assert.deepEqual([r.ReplicationMode, r.ReplicationState], ['Primary', 'WaitingForStartResynchronize'], 'B was not prepared at the point failed over to: a resynchronization is due');
    const said = ((await a.api('GET', '/api/v1/events?limit=500')).json as Array<{ Code?: string; Message: string }>).filter((e) => e.Code === 'VM_REPLICATION_REVERSED').at(-1);
    assert.match(said?.Message ?? '', /Resynchronize/);
    console.log(`reverse after the unplanned failover: ${said!.Message}`);
    await a.ok('Resume-VMReplication', '-VMName', 'rep', '-Resynchronize');
    console.log(`resynchronized: ${(await stats(a)).LastReplicationSize} bytes of differing blocks sent`);
    const onB = one(JSON.parse(await b.ok('Get-VMReplication', '-VMName', 'rep', '-Json')) as Rep | Rep[]);
    assert.deepEqual([onB.ReplicationMode, onB.ReplicationState], ['Replica', 'Replicating'], 'B\'s VM is A\'s replica now');
    const sums = await Promise.all([a, b].map(async (d) => {
      const path = ([JSON.parse(await d.ok('Get-VMHardDiskDrive', '-VMName', 'rep', '-Json'))].flat() as Array<{ Path: string }>)[0]!.Path;
      return sha256OfDisk(path);
    }));
    assert.equal(sums[1], sums[0], 'B\'s copy is A\'s disk');
  });
});

