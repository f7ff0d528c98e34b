// The pause a checkpoint causes (issue 10), in two parts.
//   node --import tsx bench/checkpoint-pause.ts          (REPEAT=5 by default)
// 1. Storage: a client writes 4 KiB at QD1 over NBD to a served 256 MiB VHDX while the block
//    server branches the export (BlockServer.branch: drain, flush, new .avhdx, swap). Printed:
//    the writes' median latency, the worst one outside the branches, the worst one that
//    overlapped a branch (the pause the guest's disk sees), and the branch's own duration.
// 2. A running test guest (generation 2, 256 MB): Checkpoint-VM's wall time (the guest is
//    paused for all of it: disks branched, memory saved) next to Save-VM's memory save on the
//    same VM, so the ratio shows what branching the disks adds to saving the memory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { BlockServer, createDiskFile } from '../src/storage/index.ts';
import { NbdTestClient } from '../src/storage/nbd/test-client.ts';
import { TestDaemon } from '../test/support/daemon.ts';

const REPEAT = Number(process.env.REPEAT ?? 5);
const MiB = 1 << 20;
const scratch = mkdtempSync(join(tmpdir(), 'ck-bench-'));
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number) => `${x.toFixed(2)} ms`;

async function storagePause(): Promise<void> {
  const leaf = join(scratch, 'disk.vhdx');
  await createDiskFile(leaf, { format: 'VHDX', type: 'Dynamic', size: 256 * MiB });
  const server = new BlockServer({ socketDir: join(scratch, 'sock') });
  const served = await server.serve(leaf, { exportName: 'b' });
  const c = await NbdTestClient.connect(served.socketPath, 'b');
  const data = new Uint8Array(4096).fill(7);
  const samples: Array<{ start: number; end: number }> = [];
  const branches: Array<{ start: number; end: number }> = [];
  let writing = true;
  const writer = (async () => {
    for (let i = 0; writing; i++) {
      const start = performance.now();
      await c.write(((i * 1_052_672) % (255 * MiB)) & ~4095, data);
      samples.push({ start, end: performance.now() });
    }
  })();
  for (let k = 0; k < REPEAT; k++) {
    await new Promise((r) => setTimeout(r, 500));
    const start = performance.now();
    await server.branch('b', `disk_${k}.avhdx`);
    branches.push({ start, end: performance.now() });
  }
  await new Promise((r) => setTimeout(r, 500));
  writing = false;
  await writer;
  await c.disconnect();
  await server.close();
  const overlaps = (s: { start: number; end: number }) => branches.some((b) => s.start < b.end && s.end > b.start);
  const lat = samples.map((s) => s.end - s.start);
  const during = samples.filter(overlaps).map((s) => s.end - s.start);
  const outside = samples.filter((s) => !overlaps(s)).map((s) => s.end - s.start);
  console.log(`\nStorage: ${samples.length} writes of 4 KiB at QD1, ${REPEAT} branches (load ${loadavg()[0]!.toFixed(1)})\n`);
  console.log('| measure | value | / median write |');
  console.log('|---|---|---|');
  const m = median(lat);
  console.log(`| median write latency | ${ms(m)} | 1 |`);
  console.log(`| worst write outside a branch | ${ms(Math.max(...outside))} | ${(Math.max(...outside) / m).toFixed(1)} |`);
  console.log(`| worst write overlapping a branch (the pause) | ${ms(Math.max(...during))} | ${(Math.max(...during) / m).toFixed(1)} |`);
  console.log(`| branch duration, median of ${REPEAT} | ${ms(median(branches.map((b) => b.end - b.start)))} | |`);
}

async function guestPause(): Promise<void> {
  const d = await TestDaemon.start();
  try {
    const disk = join(d.dataDir, 'data.vhdx');
    await d.ok('New-VHD', '-Path', disk, '-SizeBytes', '1GB', '-Dynamic');
    await d.ok('New-VM', 'ck', '-MemoryStartupBytes', '256MB', '-Generation', '2');
    await d.ok('Add-VMHardDiskDrive', '-VMName', 'ck', '-Path', disk, '-ControllerType', 'SCSI');
    await d.ok('Start-VM', 'ck');
    const timed = async (method: string, path: string, body?: unknown) => {
      const t0 = performance.now();
      const r = await d.api(method, path, body);
      if (r.status >= 300) throw new Error(`${method} ${path}: ${r.text}`);
      return performance.now() - t0;
    };
    const checkpoint: number[] = [];
    const save: number[] = [];
    for (let k = 0; k < REPEAT; k++) {
      checkpoint.push(await timed('POST', '/api/v1/vms/ck/snapshots', { SnapshotName: `c${k}` }));
      save.push(await timed('POST', '/api/v1/vms/ck/save'));
      await d.ok('Start-VM', 'ck');
    }
    const [c, s] = [median(checkpoint), median(save)];
    console.log(`\nRunning test guest, generation 2, 256 MB, one data disk; median of ${REPEAT} (load ${loadavg()[0]!.toFixed(1)})\n`);
    console.log('| action (the guest is paused throughout) | time | / Save-VM |');
    console.log('|---|---|---|');
    console.log(`| Checkpoint-VM (branch the disk, save memory, resume) | ${ms(c)} | ${(c / s).toFixed(2)} |`);
    console.log(`| Save-VM (save memory, stop QEMU) | ${ms(s)} | 1 |`);
    console.log(`\nruns: Checkpoint-VM ${checkpoint.map((x) => x.toFixed(0)).join(' ')} ms; Save-VM ${save.map((x) => x.toFixed(0)).join(' ')} ms`);
  } finally {
    await d.stop();
  }
}

await storagePause();
await guestPause();
