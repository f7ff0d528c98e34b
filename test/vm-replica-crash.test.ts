// Change tracking survives a daemon crash (issue 13's acceptance): a running test guest on A
// replicates to B at 30 s (A's timer at 1/10). Before the initial replication the guest fills
// 32 MiB of its data disk, so a full resynchronization would carry at least that much. Then it
// writes 120 records of 64 KiB (one per block, each block written once) while A's daemon is
// SIGKILLed once the guest has seen 30 of them acknowledged — the block server, the change
// tracker and any cycle in flight die with it; QEMU runs on and its NBD client reconnects to the
// next daemon. After the writer is done, a cycle whose point is after the last write must make
// B's newest recovery point hash the same as the guest's own sha256 of the disk, and all the
// cycles since the initial replication together must have carried only the written blocks
// (at most one interrupted cycle's blocks sent twice), far below the 32 MiB a resync would send.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256OfDisk } from './support/disk-hash.ts';
import { TestDaemon, freePort, sleep, waitFor } from './support/daemon.ts';
import { install, issue, makeCa, trust } from './support/replica-certs.ts';

const RECORD = 64 * 1024;
const RECORDS = 120;
const KILL_AT = 30;
const PREFILL = 32 * 1024 * 1024;

interface Replication { LastReplicationTime: string | null; ReplicationHealth: string; ReplicationState: string }
interface Stats { TotalReplicationSize: number; SuccessfulReplicationCount: number; ReplicationErrors: number }

describe('Hyper-V Replica across a crash of the primary\'s daemon', () => {
  let a: TestDaemon, b: TestDaemon, certs: string;

  before(async () => {
    certs = await mkdtemp(join(tmpdir(), 'vmhost-replica-crash-'));
    const ca = await makeCa(certs, 'vmhost-test-ca');
    const [certA, certB] = await Promise.all([issue(certs, 'primary-a.vmhost.test', ca), issue(certs, 'replica-b.vmhost.test', ca, ['127.0.0.1'])]);
    [a, b] = await Promise.all([TestDaemon.start(undefined, ['--replication-timer-scale', '0.1']), TestDaemon.start()]);
    await install(a.dataDir, certA, 'primary');
    await trust(a.dataDir, ca);
    await install(b.dataDir, certB, 'server');
    await trust(b.dataDir, ca);
    const port = await freePort();
    await b.ok('Set-VMReplicationServer', '-ReplicationEnabled', '$true', '-AllowedAuthenticationType', 'Certificate', '-CertificateAuthenticationPort', String(port),
      '-DefaultStorageLocation', join(b.dataDir, 'replicas'), '-ReplicationAllowedFromAnyServer', '$true');
    await a.ok('New-VHD', '-Path', join(a.dataDir, 'data.vhdx'), '-SizeBytes', '64MB', '-Dynamic', '-BlockSizeBytes', '1MB');
    await a.ok('New-VM', 'rep', '-MemoryStartupBytes', '256MB');
    await a.ok('Add-VMHardDiskDrive', '-VMName', 'rep', '-Path', join(a.dataDir, 'data.vhdx'), '-ControllerType', 'SCSI');
    await a.ok('Start-VM', 'rep');
    await a.ok('Enable-VMReplication', '-VMName', 'rep', '-ReplicaServerName', '127.0.0.1', '-ReplicaServerPort', String(port), '-AuthenticationType', 'Certificate',
      '-CertificateThumbprint', certA.thumbprint, '-ReplicationFrequencySec', '30', '-RecoveryHistory', '0');
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await rm(certs, { recursive: true, force: true });
  });

  test(`SIGKILL of A's daemon during ${RECORDS} writes: the next cycles carry only the written blocks, and B equals A`, { timeout: 600_000 }, async () => {
    const guest = async (script: string) => (await a.ok('Invoke-Command', '-VMName', 'rep', '-ScriptBlock', script, '-TimeoutSeconds', '120')).trim();
    await waitFor('rep heartbeat', 180_000, async () => (JSON.parse(await a.ok('Get-VM', 'rep', '-Json')) as { Heartbeat: string }).Heartbeat === 'OK');
    const dev = await guest('ls /sys/bus/scsi/devices/0:0:0:0/block/');
    // The second half of the disk holds the prefill; the records go to the first 120 blocks of 64 KiB.
    await guest(`head -c ${PREFILL} /dev/urandom | dd of=/dev/${dev} bs=1M seek=32 iflag=fullblock oflag=direct 2>/dev/null; echo filled`);
    await a.ok('Start-VMInitialReplication', '-VMName', 'rep');
    const stats = async () => JSON.parse(await a.ok('Measure-VMReplication', '-VMName', 'rep', '-Json')) as Stats;
    const initial = await stats();
    assert.ok(initial.TotalReplicationSize >= PREFILL, `the initial copy carried the prefill (${initial.TotalReplicationSize} bytes)`);

    // The agent kills what a finished script leaves in its process group: the writer detaches with setsid.
    await guest(`setsid sh -c 'touch /tmp/detached; i=0; while [ $i -lt ${RECORDS} ]; do `
      + `head -c ${RECORD} /dev/urandom | dd of=/dev/${dev} bs=${RECORD} seek=$i count=1 iflag=fullblock oflag=direct 2>/dev/null && echo $i >> /tmp/acked || echo $i >> /tmp/failed; `
      + 'i=$((i+1)); done; touch /tmp/done\' >/dev/null 2>&1 & while [ ! -f /tmp/detached ]; do sleep 0.1; done; echo started');
    const acked = await waitFor(`${KILL_AT} acknowledged writes`, 120_000, async () => {
      const n = Number(await guest('wc -l < /tmp/acked 2>/dev/null || echo 0'));
      return n >= KILL_AT && n;
    });
    assert.ok(acked < RECORDS, `the kill lands while the guest still writes (${acked} of ${RECORDS})`);
    const before = await stats();
    await a.kill();
    await sleep(300);
    await a.launch();
    console.log(`A's daemon SIGKILLed after ${acked} acknowledged writes (${before.SuccessfulReplicationCount} cycles done), restarted`);

    await waitFor('the writer done', 300_000, async () => (await guest('test -f /tmp/done && echo yes || echo no')) === 'yes');
    assert.equal(await guest('cat /tmp/failed 2>/dev/null | wc -l'), '0', 'no write failed in the guest across the crash');
    const sha = (await guest(`dd if=/dev/${dev} bs=1M iflag=direct 2>/dev/null | sha256sum`)).split(/\s+/)[0]!;
    const done = new Date();
    await waitFor('a cycle after the last write', 120_000, async () => {
      const r = JSON.parse(await a.ok('Get-VMReplication', '-VMName', 'rep', '-Json')) as Replication;
      return r.LastReplicationTime !== null && new Date(r.LastReplicationTime) > done;
    });
    await a.ok('Suspend-VMReplication', '-VMName', 'rep');
    const now = await stats();
    const sent = now.TotalReplicationSize - initial.TotalReplicationSize;
    const written = RECORDS * RECORD;
    console.log(`cycles after the initial replication: ${sent} bytes of changed blocks for ${written} bytes written (${(sent / written).toFixed(2)}×); `
      + `a resync would send ≥ ${PREFILL + written}; the disk is 64 MiB; errors ${now.ReplicationErrors}`);
    assert.ok(sent >= written, 'every written block was sent');
    assert.ok(sent <= 2 * written, 'only the written blocks were sent (an interrupted cycle\'s at most twice), not a resync of the disk\'s data');
    const leaf = [JSON.parse(await b.ok('Get-VMHardDiskDrive', '-VMName', 'rep', '-Json')) as { Path: string }[] | { Path: string }].flat()[0]!.Path;
    assert.equal(await sha256OfDisk(leaf), sha, 'B\'s newest recovery point equals the guest\'s disk after the last write');
    assert.equal((JSON.parse(await a.ok('Get-VMReplication', '-VMName', 'rep', '-Json')) as Replication).ReplicationHealth, 'Normal');
  });
});
