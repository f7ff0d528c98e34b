// Cluster Shared Volumes (issue 14, item 5), end to end on three vmhostd nodes: one directory added
// as a volume is checked by every node; a test guest on every node runs from a disk on it; the
// volume's coordinator (chosen by the leader) performs the metadata operations of the others —
// New-VHD from a non-coordinator node and the differencing disk of a running guest's checkpoint
// there are created by the coordinator (its event log says so), while the guest's I/O goes on
// directly to the new file; removing the checkpoint (a live merge) has the coordinator delete the
// merged files. SIGKILL of the coordinator's daemon: another node coordinates once its lease
// expired (the time is printed) and metadata operations (New-VHD, Resize-VHD) work again. A second
// volume then gets the other Up node as coordinator (balance), and moves to the last node at once
// when its coordinator leaves cleanly (SIGTERM revokes the node's lease).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { waitFor } from './support/daemon.ts';
import { startCluster, type TestCluster } from './support/cluster.ts';

interface VolumeView { Name: string; State: string; OwnerNode: string; Path: string; Files: string[]; SharedVolumeInfo: { FriendlyVolumeName: string }[] }
interface Event { Code: string; Message: string }

const NODES = ['node1', 'node2', 'node3'];

describe('Cluster Shared Volumes on three nodes', () => {
  let cluster: TestCluster | undefined;
  let volume = '', volume2 = '', elsewhere = '';

  before(async () => {
    cluster = await startCluster(NODES);
    volume = await mkdtemp(join(tmpdir(), 'vmhost-csv-'));
    volume2 = await mkdtemp(join(tmpdir(), 'vmhost-csv2-'));
    elsewhere = await mkdtemp(join(tmpdir(), 'vmhost-notcsv-'));
  });

  after(async () => {
    await cluster?.stop();
    for (const d of [volume, volume2, elsewhere]) if (d) await rm(d, { recursive: true, force: true });
  });

  test('VMs on every node run from one volume; its coordinator performs the others\' metadata operations and fails over', { timeout: 300_000 }, async () => {
    const { daemons, t } = cluster!;
    const at = (node: string): number => NODES.indexOf(node);
    const events = async (i: number): Promise<Event[]> => (await daemons[i]!.api('GET', '/api/v1/events?limit=500')).json as Event[];
    const opsFor = async (i: number, file: string): Promise<Event[]> => (await events(i)).filter((e) => e.Code === 'CLUSTER_CSV_OPERATION' && e.Message.includes(file));

    await t[0]!.ok('New-Cluster', '-Name', 'hv', '-Node', NODES.join(','));
    const added = await t[1]!.json<VolumeView>('Add-ClusterSharedVolume', '-Name', 'Volume1', '-Path', volume);
    assert.deepEqual([added.Name, added.State, added.Path, added.SharedVolumeInfo[0]?.FriendlyVolumeName], ['Volume1', 'Online', volume, volume]);
    assert.ok(NODES.includes(added.OwnerNode), `a coordinator is named: ${added.OwnerNode}`);
    await t[1]!.fails(/already exists/, 'Add-ClusterSharedVolume', '-Name', 'Volume1', '-Path', volume2);
    await t[1]!.fails(/overlaps Cluster Shared Volume 'Volume1'/, 'Add-ClusterSharedVolume', '-Name', 'Inner', '-Path', volume);
    const coord = at(added.OwnerNode);
    const [other, third] = [0, 1, 2].filter((i) => i !== coord) as [number, number];

    // New-VHD from a node that does not coordinate: created by the coordinator, not by it.
    const made = join(volume, 'data.vhdx');
    await t[other]!.ok('New-VHD', '-Path', made, '-SizeBytes', '8MB', '-Dynamic');
    assert.ok(existsSync(made));
    const [op] = await opsFor(coord, 'data.vhdx');
    assert.match(op?.Message ?? '', new RegExp(`created dynamic disk .*data\\.vhdx, for node ${NODES[other]}, by its coordinator ${NODES[coord]}`));
    assert.deepEqual(await opsFor(other, 'data.vhdx'), [], 'the asking node did not create it itself');
    // A file elsewhere is still this host's own.
    await t[other]!.ok('New-VHD', '-Path', join(elsewhere, 'local.vhdx'), '-SizeBytes', '8MB');
    assert.deepEqual(await opsFor(coord, 'local.vhdx'), []);

    // A guest on every node, its disk on the volume (New-VM's new disk is a metadata operation too); the
    // non-coordinator's guest also gets the new disk on its SCSI controller (the test guest has no IDE driver).
    const vm = `vm-${NODES[other]}`;
    await Promise.all(NODES.map(async (n, i) => {
      await t[i]!.ok('New-VM', `vm-${n}`, '-MemoryStartupBytes', '128MB', '-NewVHDPath', join(volume, `vm-${n}.vhdx`), '-NewVHDSizeBytes', '16MB');
      if (i === other) await t[i]!.ok('Add-VMHardDiskDrive', '-VMName', vm, '-Path', made, '-ControllerType', 'SCSI');
      await t[i]!.ok('Start-VM', `vm-${n}`);
    }));
    await Promise.all(NODES.map((n, i) => t[i]!.heartbeat(`vm-${n}`)));
    assert.equal((await opsFor(coord, `vm-${NODES[other]}.vhdx`)).length, 1, 'the coordinator created the other node\'s new disk');

    // A checkpoint of the running guest on the non-coordinator: its new .avhdx comes from the coordinator; the guest writes on to it.
    await t[other]!.ok('Checkpoint-VM', vm, '-SnapshotName', 'on-csv');
    const drives = await t[other]!.json<{ Path: string }[]>('Get-VMHardDiskDrive', vm);
    assert.equal(drives.length, 2);
    for (const d of drives) {
      assert.match(d.Path, /_[0-9a-f-]{36}\.avhdx$/);
      assert.equal((await opsFor(coord, basename(d.Path))).length, 1, `the coordinator created the checkpoint's differencing disk ${basename(d.Path)}`);
    }
    const dataLeaf = drives.find((d) => basename(d.Path).startsWith('data_'))!.Path;
    const before = statSync(dataLeaf).size;
    const dev = (await t[other]!.sh(vm, 'ls /sys/bus/scsi/devices/0:0:0:0/block/')).out.trim();
    const wrote = await t[other]!.sh(vm, `dd if=/dev/urandom of=/dev/${dev} bs=64k count=16 oflag=direct && sync`);
    assert.equal(wrote.code, 0, `the guest writes to /dev/${dev}: ${wrote.out}`);
    assert.ok(statSync(dataLeaf).size > before, 'the guest\'s writes land in the new leaf, through its own node\'s block server');
    const files = (await t[third]!.json<VolumeView>('Get-ClusterSharedVolume', 'Volume1')).Files.map((f) => basename(f));
    for (const f of ['data.vhdx', ...drives.map((d) => basename(d.Path)), ...NODES.map((n) => `vm-${n}.vhdx`)]) assert.ok(files.includes(f), `${f} listed: ${files.join(', ')}`);
    // Removing the checkpoint merges each leaf into its parent live; the coordinator deletes the merged leaves.
    await t[other]!.ok('Remove-VMSnapshot', vm, '-Name', 'on-csv');
    assert.deepEqual((await t[other]!.json<{ Path: string }[]>('Get-VMHardDiskDrive', vm)).map((d) => basename(d.Path)), [`${vm}.vhdx`, 'data.vhdx']);
    for (const d of drives) {
      assert.ok(!existsSync(d.Path));
      assert.match((await opsFor(coord, basename(d.Path))).at(-1)?.Message ?? '', new RegExp(`deleted .*, for node ${NODES[other]}`));
    }

    // The coordinator's daemon dies: another node coordinates once its lease has expired.
    const pids = await daemons[coord]!.qemuPids();
    const killedAt = Date.now();
    await daemons[coord]!.kill();
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    const next = await waitFor('a new coordinator', 30_000, async () => {
      const v = (await daemons[other]!.api('GET', '/api/v1/cluster/shared-volumes?Name=Volume1')).json as VolumeView[];
      return v[0]?.OwnerNode !== NODES[coord] && v[0]?.State === 'Online' ? v[0].OwnerNode : undefined;
    });
    process.stdout.write(`# CSV failover: ${NODES[coord]} killed, ${next} coordinates Volume1 ${Date.now() - killedAt} ms later (lease TTL 4 s)\n`);
    const asker = next === NODES[other] ? third : other;
    await t[asker]!.ok('New-VHD', '-Path', join(volume, 'after.vhdx'), '-SizeBytes', '8MB');
    await t[asker]!.ok('Resize-VHD', '-Path', join(volume, 'after.vhdx'), '-SizeBytes', '16MB');
    assert.deepEqual((await opsFor(at(next), 'after.vhdx')).map((e) => e.Message.split(':')[1]!.trim().split(' ')[0]), ['created', 'resized'], 'the new coordinator created and resized it');
    assert.equal((await t[asker]!.json<{ Size: number }>('Get-VHD', join(volume, 'after.vhdx'))).Size, 16 * 1024 * 1024);

    // Balance: a second volume over the two Up nodes gets the one that does not coordinate Volume1.
    const v2 = await t[asker]!.json<VolumeView>('Add-ClusterSharedVolume', '-Name', 'Volume2', '-Path', volume2);
    assert.deepEqual([v2.State, v2.OwnerNode], ['Online', NODES[next === NODES[other] ? third : other]]);

    // A clean leave (SIGTERM) revokes the node's lease: its volume moves to the last node without waiting for a TTL.
    const leaving = at(v2.OwnerNode), staying = leaving === asker ? (asker === other ? third : other) : asker;
    const stoppedAt = Date.now();
    await daemons[leaving]!.terminate();
    await waitFor('Volume2 on the last node', 30_000, async () =>
      ((await daemons[staying]!.api('GET', '/api/v1/cluster/shared-volumes?Name=Volume2')).json as VolumeView[])[0]?.OwnerNode === NODES[staying]);
    process.stdout.write(`# CSV clean leave: ${NODES[leaving]} stopped (SIGTERM), ${NODES[staying]} coordinates Volume2 ${Date.now() - stoppedAt} ms after the signal\n`);
    await t[staying]!.ok('Remove-ClusterSharedVolume', 'Volume2');
    assert.deepEqual((await t[staying]!.json<VolumeView[]>('Get-ClusterSharedVolume')).map((v) => [v.Name, v.OwnerNode]), [['Volume1', NODES[staying]]]);
  });
});
