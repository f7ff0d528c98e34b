// Continuous replication over a link slower than the guest writes (issue 13, item 5): A's
// running test guest replicates to B with -ReplicationFrequencySec 1 through a relay that lets
// 512 KiB/s through (support/tcp-relay.ts) while the guest writes 1 MiB records at up to
// 4 MiB/s over the 48 slots of its data disk. What bounds it: one shipment in flight on one kept
// connection, each 1 MiB piece written only when the socket drained; the writes meanwhile only
// set bits in the tracker's bitmap, so a slot rewritten ten times goes once. So while the link is
// slow: A's memory does not grow with what the guest wrote (its RSS is sampled, the growth must
// stay under what was written), the bytes replicated stay under the bytes written (coalesced),
// and Health turns Warning once B's newest point is 5 s old. Once the writer stops and the link
// is freed, B catches up: Health Normal, and B's newest files hash like the guest's disk.
// VMHOST_LONG=1 only: a slow link is slow (about three minutes with the boot).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256OfDisk } from './support/disk-hash.ts';
import { TestDaemon, freePort, waitFor } from './support/daemon.ts';
import { install, issue, makeCa, trust, type TestCert } from './support/replica-certs.ts';
import { enableReplicaServer, startPatternGuest, startRateWriter, stopRateWriter } from './support/replica-guest.ts';
import { TcpRelay } from './support/tcp-relay.ts';

const LONG = process.env.VMHOST_LONG === '1';
const LINK = 512 * 1024;
const MiB = 1 << 20;

interface Stats { TotalReplicationSize: number; MaximumReplicationSize: number; SuccessfulReplicationCount: number; Health: string; LastReplicationTime: string | null }

/** The daemon's resident memory, bytes (/proc/PID/status). */
async function rss(d: TestDaemon): Promise<number> {
  const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${d.proc!.pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

describe('continuous replication over a slow link', { skip: !LONG && 'VMHOST_LONG=1 only: minutes of a throttled link' }, () => {
  let a: TestDaemon, b: TestDaemon, certs: string, certA: TestCert, link: TcpRelay;
  before(async () => {
    certs = await mkdtemp(join(tmpdir(), 'vmhost-replica-slow-'));
    const ca = await makeCa(certs, 'vmhost-test-ca');
    let certB: TestCert;
    [certA, certB] = await Promise.all([issue(certs, 'primary-a.vmhost.test', ca), issue(certs, 'replica-b.vmhost.test', ca, ['127.0.0.1'])]);
    [a, b] = await Promise.all([TestDaemon.start(), TestDaemon.start()]);
    for (const [d, cert] of [[a, certA], [b, certB]] as const) {
      await install(d.dataDir, cert, 'host');
      await trust(d.dataDir, ca);
    }
    const port = await freePort();
    await enableReplicaServer(b, port, 'primary-a.vmhost.test');
    link = await TcpRelay.start({ port });
  });
  after(async () => {
    await link?.close();
    await Promise.all([a?.stop(), b?.stop()]);
    await rm(certs, { recursive: true, force: true });
  });

  test('memory stays bounded, writes coalesce, Health warns, and B catches up once the link frees', { timeout: 900_000 }, async () => {
    const g = await startPatternGuest(a, 'slow');
    await a.ok('Enable-VMReplication', '-VMName', 'slow', '-ReplicaServerName', '127.0.0.1', '-ReplicaServerPort', String(link.port), '-AuthenticationType', 'Certificate',
      '-CertificateThumbprint', certA.thumbprint, '-CompressionEnabled', '$true', '-RecoveryHistory', '2', '-ReplicationFrequencySec', '1');
    await a.ok('Start-VMInitialReplication', '-VMName', 'slow');
    const stats = async () => JSON.parse(await a.ok('Measure-VMReplication', '-VMName', 'slow', '-Json')) as Stats;

    link.setRate('up', LINK);
    const s0 = await stats();
    const rss0 = await rss(a);
    await startRateWriter(g, 4);
    const written = async () => Number(await g.run('cat /tmp/cn'));
    let peak = rss0;
    // Twice the 48 slots written, and the replica seen lagging.
    let warned = false;
    await waitFor('96 MiB written over the slow link and Health Warning', 600_000, async () => {
      peak = Math.max(peak, await rss(a));
      warned ||= (await stats()).Health === 'Warning';
      return warned && (await written()) >= 96;
    });
    const records = await stopRateWriter(g);
    const s1 = await stats();
    const replicated = s1.TotalReplicationSize - s0.TotalReplicationSize;
    console.log(`slow link ${LINK / 1024} KiB/s: the guest wrote ${records} MiB, ${(replicated / MiB).toFixed(1)} MiB replicated meanwhile in ${s1.SuccessfulReplicationCount - s0.SuccessfulReplicationCount} shipments `
      + `(largest ${(s1.MaximumReplicationSize / MiB).toFixed(1)} MiB), A's RSS ${(rss0 / MiB).toFixed(0)} → peak ${(peak / MiB).toFixed(0)} MiB — load ${loadavg()[0]!.toFixed(1)}`);
    assert.ok(peak - rss0 < records * MiB / 2, `A's memory grew ${((peak - rss0) / MiB).toFixed(0)} MiB while the guest wrote ${records} MiB`);
    assert.ok(replicated < records * MiB, 'rewrites coalesced: fewer bytes replicated than written');
    assert.ok(s1.MaximumReplicationSize <= 48 * MiB + (1 << 16) * 16, 'a shipment carries at most the blocks the writer covers');

    // The link frees: B catches up to the disk as the writer left it.
    const sha = await g.sha();
    const stopped = Date.now();
    link.setRate('up', Infinity);
    await waitFor('B caught up and Health Normal', 300_000, async () => {
      const s = await stats();
      return s.Health === 'Normal' && s.LastReplicationTime !== null && Date.parse(s.LastReplicationTime) > stopped;
    });
    await a.ok('Suspend-VMReplication', '-VMName', 'slow');
    const leaf = [JSON.parse(await b.ok('Get-VMHardDiskDrive', '-VMName', 'slow', '-Json')) as { Path: string } | Array<{ Path: string }>].flat()[0]!.Path;
    assert.equal(await sha256OfDisk(leaf), sha, 'B equals the guest\'s disk once caught up');
  });
});
