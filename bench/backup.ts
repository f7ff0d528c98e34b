// Incremental backup's time against a full read of the disk (issue 13): one daemon, one running
// test guest with a SIZE_MIB dynamic VHDX data disk filled with random bytes before it is
// attached (written through our VHDX engine on the host, every block allocated: a full read
// reads it all, and restic has nothing to deduplicate). A first Start-VMBackup makes the chain's
// full point; then REPEAT rounds of: the guest rewrites CHANGE_MIB as scattered 64 KiB blocks
// (O_DIRECT, a different spread each round), an incremental Start-VMBackup (timed), and two
// peers run alternately in the same round on the same disk:
//   full read   — `qemu-img convert -U -n` of the disk file into a null-co target (writes dropped):
//                 every byte of the virtual disk read and decoded (-U: the daemon holds the file;
//                 the guest is idle meanwhile), once through the page cache and once with -T none
//                 (O_DIRECT: from the storage itself);
//   full backup — a forced full point: Start-VMBackup into a second repository whose last point
//                 was removed (Remove-VMBackup, untimed), so its next point starts a new chain
//                 (the repository made by an untimed full point first).
// The disk file was just written: the backups and the cached full read find it in the page cache.
// Per operation: wall seconds, bytes read (the backup's ChangedBytes; the peer's virtual size),
// CPU seconds (the daemon's, restic included as its waited-for child; qemu-img's own), load.
//   node --import tsx bench/backup.ts      (SIZE_MIB=1024 CHANGE_MIB=32 REPEAT=3)
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { openDiskFile } from '../src/storage/index.ts';
import { TestDaemon, waitFor } from '../test/support/daemon.ts';
import { median } from './nbd-servers.ts';

const MiB = 1 << 20;
const SIZE_MIB = Number(process.env.SIZE_MIB ?? 1024);
const CHANGE_MIB = Number(process.env.CHANGE_MIB ?? 32);
const REPEAT = Number(process.env.REPEAT ?? 3);
const BLOCK = 64 * 1024;
const VM = 'bkbench';

interface Backup { BackupId: string; Kind: string; Point: number; ChangedBytes: number; DataBytes: number; StoredBytes: number }
interface Op { seconds: number; bytes: number; cpu: number; load: number }

/** CPU seconds (user + system) of a process and its waited-for children, from /proc. */
function cpuOf(pid: number | 'self'): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((ok, fail) => execFile(cmd, args, { timeout: 1_800_000 }, (e, _out, err) => (e ? fail(new Error(`${cmd} ${args.join(' ')}: ${err || e.message}`)) : ok())));
}

/** The disk file filled with random bytes, 1 MiB at a time, through our engine. */
async function fill(path: string): Promise<void> {
  const d = await openDiskFile(path);
  try {
    for (let o = 0; o < SIZE_MIB * MiB; o += MiB) await d.write(randomBytes(MiB), o);
    await d.flush();
  } finally {
    await d.close();
  }
}

async function main(): Promise<void> {
  let d: TestDaemon | undefined;
  try {
    d = await TestDaemon.start();
    const daemon = d;
    const ok = (...args: string[]) => daemon.ok(...args);
    const guest = async (script: string) => (await ok('Invoke-Command', '-VMName', VM, '-ScriptBlock', script, '-TimeoutSeconds', '600')).trim();
    const disk = join(d.dataDir, `${VM}-data.vhdx`);
    const [repo, fullRepo] = [join(d.dataDir, 'repo'), join(d.dataDir, 'repo-full')];
    await ok('New-VHD', '-Path', disk, '-SizeBytes', `${SIZE_MIB}MB`, '-Dynamic');
    const t0 = Date.now();
    await fill(disk);
    console.log(`filled ${SIZE_MIB} MiB with random bytes in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await ok('New-VM', VM, '-MemoryStartupBytes', '256MB', '-Generation', '2');
    await ok('Add-VMHardDiskDrive', '-VMName', VM, '-Path', disk, '-ControllerType', 'SCSI');
    await ok('Start-VM', VM);
    await waitFor(`${VM} heartbeat`, 300_000, async () => (JSON.parse(await ok('Get-VM', VM, '-Json')) as { Heartbeat: string }).Heartbeat === 'OK');
    const dev = await guest('ls /sys/bus/scsi/devices/0:0:0:0/block/');
    // One 64 KiB random block drawn once (/dev/urandom is slow under TCG), a header per write makes each block new.
    await guest(`head -c ${BLOCK} /dev/urandom > /tmp/rnd; echo ok`);

    const pid = d.proc!.pid!;
    const backup = async (dest: string): Promise<{ b: Backup; op: Op }> => {
      const [w0, c0, load] = [Date.now(), cpuOf(pid), loadavg()[0]!];
      const b = JSON.parse(await ok('Start-VMBackup', '-VMName', VM, '-Destination', dest, '-Json')) as Backup;
      return { b, op: { seconds: (Date.now() - w0) / 1000, bytes: b.ChangedBytes, cpu: cpuOf(pid) - c0, load } };
    };
    const fullRead = async (direct: boolean): Promise<Op> => {
      const [w0, c0, load] = [Date.now(), cpuOf('self'), loadavg()[0]!];
      await run('qemu-img', ['convert', ...(direct ? ['-T', 'none'] : []), '-U', '-n', '-f', 'vhdx', '--target-image-opts', disk, `driver=null-co,size=${SIZE_MIB * MiB}`]);
      return { seconds: (Date.now() - w0) / 1000, bytes: SIZE_MIB * MiB, cpu: cpuOf('self') - c0, load };
    };
    const fullBackup = async (): Promise<Op> => {
      const { b, op } = await backup(fullRepo);
      if (b.Kind !== 'Full') throw new Error(`the second repository's point ${b.Point} is ${b.Kind}, not Full`);
      await ok('Remove-VMBackup', '-Path', fullRepo, '-BackupId', b.BackupId); // its next point starts a new chain
      return op;
    };
    // Round r's blocks: CHANGE_MIB × 16 distinct 64 KiB blocks spread over the disk (an odd stride mod a power of two).
    const nBlocks = (SIZE_MIB * MiB) / BLOCK;
    const change = (r: number) => guest(`i=0; while [ $i -lt ${CHANGE_MIB * 16} ]; do printf "r=%d i=%08d\\n" ${r} $i > /tmp/rec; cat /tmp/rnd >> /tmp/rec; `
      + `dd if=/tmp/rec of=/dev/${dev} bs=${BLOCK} count=1 seek=$(( (i * 7919 + ${r * 104729}) % ${nBlocks} )) oflag=direct conv=notrunc 2>/dev/null; i=$((i+1)); done; echo $i`);

    const first = await backup(repo);
    console.log(`first point (${first.b.Kind}): ${first.op.seconds.toFixed(1)} s, read ${(first.b.ChangedBytes / MiB).toFixed(1)} MiB, daemon CPU ${first.op.cpu.toFixed(1)} s, load ${first.op.load.toFixed(2)}`);
    // The second repository created (restic init, its key) outside the timed runs.
    await fullBackup();
    const rows: Array<{ inc: Op; read: Op; direct: Op; full: Op }> = [];
    for (let r = 0; r < REPEAT; r++) {
      await change(r);
      const { b, op: inc } = await backup(repo);
      if (b.Kind !== 'Incremental') throw new Error(`point ${b.Point} is ${b.Kind}`);
      // Peers alternate their order round by round; the guest is idle during both.
      let read: Op, direct: Op, full: Op;
      if (r % 2 === 0) { read = await fullRead(false); direct = await fullRead(true); full = await fullBackup(); } else { full = await fullBackup(); direct = await fullRead(true); read = await fullRead(false); }
      rows.push({ inc, read, direct, full });
      console.log(`round ${r + 1}: incremental ${inc.seconds.toFixed(2)} s (${(inc.bytes / MiB).toFixed(1)} MiB read, ${(b.StoredBytes / MiB).toFixed(1)} MiB stored), full read ${read.seconds.toFixed(2)} s (O_DIRECT ${direct.seconds.toFixed(2)} s), full backup ${full.seconds.toFixed(2)} s`);
    }
    const s = (x: number) => x.toFixed(2);
    const mib = (x: number) => (x / MiB).toFixed(1);
    console.log(`\n${SIZE_MIB} MiB disk, ${CHANGE_MIB} MiB changed per round as 64 KiB blocks; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')} at end\n`);
    console.log('| round | incremental s | MiB read | CPU s | full read s (cached) | CPU s | full read s (O_DIRECT) | CPU s | full backup s | MiB read | CPU s | inc / full read (cached) | inc / full read (O_DIRECT) | inc / full backup | load |');
    console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    rows.forEach(({ inc, read, direct, full }, i) => console.log(`| ${i + 1} | ${s(inc.seconds)} | ${mib(inc.bytes)} | ${s(inc.cpu)} | ${s(read.seconds)} | ${s(read.cpu)} | ${s(direct.seconds)} | ${s(direct.cpu)} | ${s(full.seconds)} | ${mib(full.bytes)} | ${s(full.cpu)} | `
      + `${(inc.seconds / read.seconds).toFixed(3)} | ${(inc.seconds / direct.seconds).toFixed(3)} | ${(inc.seconds / full.seconds).toFixed(3)} | ${[inc, read, direct, full].map((o) => o.load.toFixed(2)).join('/')} |`));
    const m = (f: (x: (typeof rows)[number]) => number) => median(rows.map(f));
    console.log(`| median | ${s(m((x) => x.inc.seconds))} | ${mib(m((x) => x.inc.bytes))} | ${s(m((x) => x.inc.cpu))} | ${s(m((x) => x.read.seconds))} | ${s(m((x) => x.read.cpu))} | ${s(m((x) => x.direct.seconds))} | ${s(m((x) => x.direct.cpu))} | `
      + `${s(m((x) => x.full.seconds))} | ${mib(m((x) => x.full.bytes))} | ${s(m((x) => x.full.cpu))} | ${(m((x) => x.inc.seconds / x.read.seconds)).toFixed(3)} | ${(m((x) => x.inc.seconds / x.direct.seconds)).toFixed(3)} | ${(m((x) => x.inc.seconds / x.full.seconds)).toFixed(3)} | |`);
  } finally {
    await d?.stop();
  }
}

await main();
