// QEMU accepts the full command line the builder makes: every disk bus (NBD from qemu-nbd and
// plain files), both NIC models connected to stand-in switch ports, NUMA, CPU topology — for
// generation 1 and 2, started paused (-S) so nothing burns CPU. Plus SCSI hot-plug and unplug
// (DEVICE_DELETED), block_resize, and the serial console socket.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, ftruncateSync, statSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { diskNodeName } from './command-line.ts';
import { ensureVarsFile, findOvmf } from './host-facts.ts';
import { QemuTestBed } from './test-support.ts';
import type { DiskSpec, NicSpec } from './vm-spec.ts';

const bed = new QemuTestBed();
const helpers: ChildProcess[] = [];
const servers: Server[] = [];
after(async () => {
  for (const h of helpers) h.kill('SIGKILL');
  for (const s of servers) s.close();
  await bed.cleanup();
});

function rawFile(name: string, bytes: number): string {
  const p = join(bed.dir, name);
  const fd = openSync(p, 'w');
  ftruncateSync(fd, bytes);
  closeSync(fd);
  return p;
}

async function nbdServer(name: string, file: string): Promise<string> {
  const sock = join(bed.dir, `${name}.nbd`);
  const p = spawn('qemu-nbd', ['-t', '-f', 'raw', '-k', sock, '-x', name, file], { stdio: 'ignore' });
  helpers.push(p);
  // A deadline, not 100 rounds of 20 ms: qemu-nbd's start-up grows with the host's load.
  for (const end = Date.now() + 15_000; Date.now() < end && !existsSync(sock);) await sleep(20);
  assert.ok(existsSync(sock), 'qemu-nbd socket');
  return sock;
}

/** A stand-in switch port: a listening unix socket that counts connections. */
async function switchPort(name: string): Promise<{ path: string; connections: Socket[] }> {
  const path = join(bed.dir, `${name}.port`);
  const connections: Socket[] = [];
  const srv = createServer((s) => { connections.push(s); s.on('error', () => {}); });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(path, r));
  return { path, connections };
}

test('generation 1 with IDE/SCSI/virtio disks, e1000 + virtio NICs, NUMA: QEMU accepts it', async () => {
  const nbdSock = await nbdServer('boot1', rawFile('boot1.raw', 64 << 20));
  const p0 = await switchPort('g1p0'), p1 = await switchPort('g1p1');
  const disks: DiskSpec[] = [
    { id: 'boot', bus: 'ide', source: { kind: 'nbd', socketPath: nbdSock, exportName: 'boot1' }, controllerNumber: 0, controllerLocation: 0, bootIndex: 1 },
    { id: 'dvd', bus: 'ide', media: 'cdrom', readOnly: true, source: { kind: 'file', path: rawFile('dvd.iso', 2 << 20) }, controllerNumber: 1, controllerLocation: 0 },
    { id: 'scsi0d', bus: 'scsi', source: { kind: 'file', path: rawFile('s.raw', 8 << 20) }, controllerNumber: 0, controllerLocation: 2 },
    { id: 'vd', bus: 'virtio', readOnly: true, source: { kind: 'file', path: rawFile('v.raw', 8 << 20) } },
  ];
  const nics: NicSpec[] = [
    { id: 'nic0', mac: '52:54:00:00:01:01', model: 'legacy', streamSocketPath: p0.path },
    { id: 'nic1', mac: '52:54:00:00:01:02', model: 'virtio', streamSocketPath: p1.path },
  ];
  const spec = bed.spec({
    processorCount: 4, topology: { sockets: 2, cores: 2, threads: 1 }, numa: { count: 2 }, memoryStartupBytes: 128 << 20, disks, nics,
  }, 'hw1');
  const proc = await bed.start(spec, { startPaused: true });
  assert.equal((await proc.qmp.execute('query-status')).status, 'prelaunch');
  const cpus = await proc.qmp.execute('query-cpus-fast');
  assert.deepEqual(cpus.map((c) => c.props?.['node-id']), [0, 0, 1, 1]);
  assert.deepEqual(cpus.map((c) => c.props?.['socket-id']), [0, 0, 1, 1]);
  const blocks = await proc.qmp.execute('human-monitor-command', { 'command-line': 'info block' });
  for (const d of disks) assert.match(blocks, new RegExp(`${diskNodeName(d.id)}`), blocks);
  const pci = await proc.qmp.execute('human-monitor-command', { 'command-line': 'info pci' });
  assert.match(pci, /Ethernet controller: PCI device 8086:100e/); // e1000
  assert.match(pci, /IDE controller/);
  for (const end = Date.now() + 15_000; Date.now() < end && (p0.connections.length === 0 || p1.connections.length === 0);) await sleep(20);
  assert.equal(p0.connections.length, 1, 'legacy NIC connected to its switch port');
  assert.equal(p1.connections.length, 1, 'virtio NIC connected to its switch port');

  // The serial console socket accepts a console while the log keeps being written.
  const console_ = connect(spec.paths.serialSocket);
  await new Promise<void>((r, j) => { console_.once('connect', r); console_.once('error', j); });
  console_.destroy();
  assert.ok(existsSync(spec.paths.serialLog));
  await proc.quit();
});

test('generation 2 with SCSI over NBD + virtio: QEMU accepts it; SCSI hot-plug, resize, unplug', async () => {
  const file = rawFile('os2.raw', 64 << 20);
  const nbdSock = await nbdServer('os2', file);
  const port = await switchPort('g2p0');
  const fw = findOvmf(false);
  const varsPath = join(bed.dir, 'hw2_VARS.fd');
  await ensureVarsFile(varsPath, fw);
  const spec = bed.spec({
    generation: 2, processorCount: 2, numa: { count: 2, memoryMiBPerNode: [64, 192] }, memoryStartupBytes: 256 << 20,
    firmware: { codePath: fw.codePath, varsPath, secureBoot: false },
    disks: [
      { id: 'os', bus: 'scsi', source: { kind: 'nbd', socketPath: nbdSock, exportName: 'os2' }, controllerNumber: 0, controllerLocation: 0, bootIndex: 1 },
      { id: 'data', bus: 'virtio', source: { kind: 'file', path: rawFile('d2.raw', 8 << 20) } },
    ],
    nics: [{ id: 'nic0', mac: '52:54:00:00:02:01', model: 'virtio', streamSocketPath: port.path }],
  }, 'hw2');
  assert.equal(statSync(varsPath).size, statSync(fw.varsTemplatePath).size);
  const proc = await bed.start(spec, { startPaused: true });
  const pci = await proc.qmp.execute('human-monitor-command', { 'command-line': 'info pci' });
  assert.doesNotMatch(pci, /8086:100e/);
  const numa = await proc.qmp.execute('human-monitor-command', { 'command-line': 'info numa' });
  assert.match(numa, /node 0 size: 64 MB/);
  assert.match(numa, /node 1 size: 192 MB/);

  // Hot-add a second SCSI disk, grow it, remove it.
  const hot = rawFile('hot.raw', 4 << 20);
  await proc.qmp.execute('blockdev-add', { driver: 'file', 'node-name': 'hot-file', filename: hot });
  await proc.qmp.execute('blockdev-add', { driver: 'raw', 'node-name': diskNodeName('hot'), file: 'hot-file' });
  await proc.qmp.execute('device_add', { driver: 'scsi-hd', id: 'hot', drive: diskNodeName('hot'), bus: 'scsi0.0', 'scsi-id': 5, lun: 0 });
  await proc.qmp.execute('block_resize', { 'node-name': diskNodeName('hot'), size: 16 << 20 });
  assert.equal(statSync(hot).size, 16 << 20);
  const deleted = proc.qmp.waitForEvent('DEVICE_DELETED', { timeoutMs: 5000, predicate: (e) => e.data.device === 'hot' });
  await proc.qmp.execute('device_del', { id: 'hot' });
  await deleted;
  await proc.qmp.execute('blockdev-del', { 'node-name': diskNodeName('hot') });
  await proc.qmp.execute('blockdev-del', { 'node-name': 'hot-file' });
  await proc.quit();
});
