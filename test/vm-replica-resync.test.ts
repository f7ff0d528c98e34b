// Hyper-V Replica without a full copy (issue 13): Start-VMInitialReplication -UseBackup and
// resynchronization by block comparison, between two daemons. A guest on A writes records of
// 64 KiB at distinct blocks of its 64 MiB data disk, held between rounds (so a copy taken while
// it is held must hash as the guest's own disk):
// 1. Start-VMBackup of the running guest, then 10 more records; B restores the backup as the
//    replica (Import-VMInitialReplication -Path <the repository>, A's repository key copied as an
//    admin would); Start-VMInitialReplication -UseBackup compares blocks: exactly the 10 records'
//    blocks cross (printed against the disk's size), and B's copy hashes as the guest's disk.
// 2. Unplanned failover and its Reverse: A's replication suspended, 7 more records, A's VM
//    turned off (B never saw them); on B Start-VMFailover, Start-VM, Complete-VMFailover of the
//    running VM (its chain merged into the base live: one file per drive), off; Set-VMReplication
//    -Reverse makes A's disks B's replica as they are (WaitingForStartResynchronize, Health
//    Critical); Resume-VMReplication -Resynchronize sends only the 7 differing blocks back, and
//    both sides hash the same.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { sha256OfDisk } from './support/disk-hash.ts';
import type { TestDaemon } from './support/daemon.ts';
import { startReplicaPair, type ReplicaPair } from './support/replica-pair.ts';
import { RECORD, startPatternGuest, type PatternGuest } from './support/replica-guest.ts';

const SCALE = 0.05;
const DISK = 64 << 20;

interface Rep { ReplicationMode: string; ReplicationState: string; ReplicationHealth: string }
interface Stats { SuccessfulReplicationCount: number; LastReplicationSize: number; LastTransferredSize: number }
const one = <T>(x: T | T[]): T => [x].flat()[0] as T;

describe('Hyper-V Replica: -UseBackup and resynchronization by block comparison', () => {
  let pair: ReplicaPair;
  let a: TestDaemon, b: TestDaemon;
  let g: PatternGuest;
  before(async () => {
    pair = await startReplicaPair({ timerScale: SCALE, reverse: true });
    ({ a, b } = pair);
  });
  after(async () => { await pair?.stop(); });

  const rep = async (d: TestDaemon) => one(JSON.parse(await d.ok('Get-VMReplication', '-VMName', 'rb', '-Json')) as Rep | Rep[]);
  const stats = async (d: TestDaemon) => one(JSON.parse(await d.ok('Measure-VMReplication', '-VMName', 'rb', '-Json')) as Stats | Stats[]);
  const drivePath = async (d: TestDaemon) => one(JSON.parse(await d.ok('Get-VMHardDiskDrive', '-VMName', 'rb', '-Json')) as { Path: string } | Array<{ Path: string }>).Path;

  test('Start-VMInitialReplication -UseBackup sends only what changed since the backup', { timeout: 600_000 }, async () => {
    g = await startPatternGuest(a, 'rb');
    const backedUp = await g.release(20); // the writer holds after its current record: a few more may go
    const repo = join(a.dataDir, 'backups');
    await a.ok('Start-VMBackup', '-VMName', 'rb', '-Destination', repo);
    const after = (await g.release(10)) - backedUp;
    // B reads the repository with its key, copied as an admin would (restoring elsewhere needs it).
    await cp(join(a.dataDir, 'backup-keys'), join(b.dataDir, 'backup-keys'), { recursive: true });
    await b.ok('Import-VMInitialReplication', '-VMName', 'rb', '-Path', repo);
    assert.equal((await rep(b)).ReplicationMode, 'Replica');
    await a.ok('Enable-VMReplication', '-VMName', 'rb', '-ReplicaServerName', '127.0.0.1', '-ReplicaServerPort', String(pair.portB), '-AuthenticationType', 'Certificate',
      '-CertificateThumbprint', pair.certA.thumbprint, '-ReplicationFrequencySec', '30', '-RecoveryHistory', '2', '-CompressionEnabled', '$true');
    await a.ok('Start-VMInitialReplication', '-VMName', 'rb', '-UseBackup');
    const s = await stats(a);
    console.log(`-UseBackup: ${s.LastReplicationSize} bytes of differing blocks sent (${s.LastTransferredSize} on the wire) for a ${DISK}-byte disk; the guest wrote ${after} records after the backup`);
    assert.equal(s.LastReplicationSize, after * RECORD, 'exactly the blocks written after the backup (each record a block of its own)');
    assert.equal((await rep(a)).ReplicationState, 'Replicating');
    // The writer is held: B's newest files are the guest's disk.
    const [guest, replica] = [await g.sha(), await sha256OfDisk(await drivePath(b))];
    assert.equal(replica, guest, 'B\'s copy is the guest\'s disk');
  });

  test('Reverse after an unplanned failover: a resynchronization sends only the differing blocks', { timeout: 600_000 }, async () => {
    await a.ok('Suspend-VMReplication', '-VMName', 'rb');
    const held = Number(await g.run('cat /tmp/n'));
    const unsent = (await g.release(7)) - held; // never replicated
    await a.ok('Stop-VM', 'rb', '-TurnOff');
    await b.ok('Start-VMFailover', '-VMName', 'rb');
    await b.ok('Start-VM', 'rb');
    // Complete-VMFailover of the running VM: its chain merged into the base under the guest's I/O.
    const before = await drivePath(b);
    await b.ok('Complete-VMFailover', '-VMName', 'rb');
    const completed = await drivePath(b);
    console.log(`Complete-VMFailover of the running VM: ${basename(before)} → ${basename(completed)}`);
    assert.doesNotMatch(basename(completed), /\.avhdx$/i, 'the running VM ends on one file per drive');
    await b.ok('Stop-VM', 'rb', '-TurnOff');
    await b.ok('Set-VMReplication', '-VMName', 'rb', '-Reverse', '-ReplicaServerName', '127.0.0.1', '-ReplicaServerPort', String(pair.portA));
    const waiting = await rep(b);
    assert.deepEqual([waiting.ReplicationMode, waiting.ReplicationState, waiting.ReplicationHealth], ['Primary', 'WaitingForStartResynchronize', 'Critical']);
    assert.equal((await rep(a)).ReplicationMode, 'Replica');
    await b.ok('Resume-VMReplication', '-VMName', 'rb', '-Resynchronize');
    const s = await stats(b);
    console.log(`Reverse + Resume-VMReplication -Resynchronize: ${s.LastReplicationSize} bytes of differing blocks sent (${s.LastTransferredSize} on the wire) for a ${DISK}-byte disk; A wrote ${unsent} records B never got`);
    // A's unsent records differ; B's guest, booting while its failover completed, may have written its data disk too (it does not mount it).
    assert.ok(s.LastReplicationSize >= unsent * RECORD && s.LastReplicationSize < DISK / 16, 'only the blocks that differ, A\'s unsent records among them');
    assert.equal((await rep(b)).ReplicationState, 'Replicating');
    assert.equal(await sha256OfDisk(await drivePath(a)), await sha256OfDisk(await drivePath(b)), 'both sides hold the same disk');
  });
});
