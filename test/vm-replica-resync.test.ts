// Hyper-V Replica without a full copy (issue 13): Start-VMInitialReplication -UseBackup and
// resynchronization by block comparison, between two daemons. A guest on A writes records of
// 64 KiB, each at a block of its own of its 64 MiB data disk, held between rounds (so a copy
// taken while it is held must hash as the guest's own disk):
// 1. Start-VMBackup of the running guest, then more records; B restores the backup as the
//    replica (Import-VMInitialReplication -Path <the repository>, A's repository key copied as an
//    admin would); Start-VMInitialReplication -UseBackup compares blocks: exactly the blocks of
//    the records written after the backup cross (printed against the disk's size), and B's copy
//    hashes as the guest's disk.
// 2. The tracker loses track: A's VM off, its disk written by another tool (our engine: a new
//    DataWriteGuid), started again: the next cycle sends nothing and the relationship turns
//    WaitingForStartResynchronize (Health Critical); Resume-VMReplication -Resynchronize sends
//    the blocks that differ and it is Replicating again.
// 3. Unplanned failover and its Reverse: A's VM off and written by another tool again (B never
//    sees those blocks); on B Start-VMFailover, Start-VM, Complete-VMFailover of the running VM
//    (its chain merged into the base live: one file per drive), off; Set-VMReplication -Reverse
//    makes A's disks B's replica as they are (WaitingForStartResynchronize); Resume-VMReplication
//    -Resynchronize sends back only the differing blocks (A's unsent writes undone), and both
//    sides hash the same.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, join } from 'node:path';
import { openDiskFile } from '../src/storage/index.ts';
import { sha256OfDisk } from './support/disk-hash.ts';
import { waitFor, type TestDaemon } from './support/daemon.ts';
import { startReplicaPair, type ReplicaPair } from './support/replica-pair.ts';
import { RECORD, startPatternGuest, type PatternGuest } from './support/replica-guest.ts';

const SCALE = 0.05;
const DISK = 64 << 20;

interface Rep { ReplicationMode: string; ReplicationState: string; ReplicationHealth: string }
interface Stats { SuccessfulReplicationCount: number; TotalReplicationSize: number; LastTransferredSize: number }
const one = <T>(x: T | T[]): T => [x].flat()[0] as T;

/** Random bytes into blocks of a VM's disk file with our own engine, as another tool would while the VM is off (a new DataWriteGuid). */
async function writeBlocks(path: string, blocks: number[]): Promise<void> {
  const d = await openDiskFile(path);
  try {
    for (const b of blocks) await d.write(randomBytes(RECORD), b * RECORD);
    await d.flush();
  } finally {
    await d.close();
  }
}

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
  /** The newest resynchronization's bytes of differing blocks (data and zero extents), from its event. */
  const differed = async (d: TestDaemon) => {
    const e = ((await d.api('GET', '/api/v1/events?limit=500')).json as Array<{ Code?: string; Message: string }>).filter((x) => x.Code === 'VM_REPLICATION_RESYNCHRONIZED').at(-1);
    const m = /: (\d+) bytes of blocks differed/.exec(e?.Message ?? '');
    assert.ok(m, `the resynchronization's event: ${e?.Message}`);
    return Number(m[1]);
  };
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
    // Total: cycles may have run since (the writer is held: they add nothing).
    const s = await stats(a);
    console.log(`-UseBackup: ${s.TotalReplicationSize} bytes of differing blocks sent for a ${DISK}-byte disk; the guest wrote ${after} records after the backup`);
    assert.equal(s.TotalReplicationSize, after * RECORD, 'exactly the blocks written after the backup (each record a block of its own)');
    assert.equal(await differed(a), after * RECORD);
    assert.equal((await rep(a)).ReplicationState, 'Replicating');
    // The writer is held: B's newest files are the guest's disk.
    const [guest, replica] = [await g.sha(), await sha256OfDisk(await drivePath(b))];
    assert.equal(replica, guest, 'B\'s copy is the guest\'s disk');
  });

  test('a tracker that lost track: WaitingForStartResynchronize, then a resynchronization', { timeout: 600_000 }, async () => {
    await a.ok('Stop-VM', 'rb', '-TurnOff');
    await writeBlocks(await drivePath(a), [300]);
    const total = (await stats(a)).TotalReplicationSize;
    await a.ok('Start-VM', 'rb'); // Running at once: the cycles go on while it boots
    const waiting = await waitFor('resynchronization required', 120_000, async () => {
      const r = await rep(a);
      return r.ReplicationState === 'WaitingForStartResynchronize' ? r : undefined;
    });
    assert.equal(waiting.ReplicationHealth, 'Critical');
    assert.equal((await stats(a)).TotalReplicationSize, total, 'the cycle that found the tracker lost sent nothing');
    const said = ((await a.api('GET', '/api/v1/events?limit=500')).json as Array<{ Code?: string; Message: string }>).filter((e) => e.Code === 'VM_REPLICATION_RESYNC_REQUIRED').at(-1);
    console.log(`tracker lost: ${said?.Message}`);
    await a.ok('Resume-VMReplication', '-VMName', 'rb', '-Resynchronize');
    const [sent, differing] = [(await stats(a)).TotalReplicationSize - total, await differed(a)];
    console.log(`Resume-VMReplication -Resynchronize: ${differing} bytes of blocks differed, ${sent} sent as data, for a ${DISK}-byte disk (one block written while off)`);
    // The block written while off; the booting guest does not mount its data disk (were it to write there, those blocks would differ too).
    assert.ok(differing >= RECORD && differing < DISK / 16 && sent <= differing, 'the differing blocks only');
    assert.equal((await rep(a)).ReplicationState, 'Replicating');
  });

  test('Reverse after an unplanned failover: a resynchronization sends only the differing blocks', { timeout: 600_000 }, async () => {
    await a.ok('Stop-VM', 'rb', '-TurnOff');
    const unsent = [400, 401, 402, 500, 600, 700, 800];
    await writeBlocks(await drivePath(a), unsent); // B never gets these
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
    const [s, differing] = [await stats(b), await differed(b)];
    console.log(`Reverse + Resume-VMReplication -Resynchronize: ${differing} bytes of blocks differed of a ${DISK}-byte disk, ${s.TotalReplicationSize} of them sent as data (${s.LastTransferredSize} on the wire), the rest as zero extents: A's unsent blocks are zeros on B; A wrote ${unsent.length} blocks B never got`);
    // B's guest, booting while its failover completed, does not mount its data disk; were it to write there, those blocks would differ too.
    assert.ok(differing >= unsent.length * RECORD && differing < DISK / 16 && s.TotalReplicationSize <= differing, 'only the blocks that differ, A\'s unsent ones among them');
    assert.equal((await rep(b)).ReplicationState, 'Replicating');
    assert.equal(await sha256OfDisk(await drivePath(a)), await sha256OfDisk(await drivePath(b)), 'both sides hold the same disk');
  });
});
