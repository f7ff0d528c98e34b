// Start-VM → Heartbeat OK, vmhost against QEMU started by hand (issue 9), for the built-in
// test guest and the real Debian 12 guest on both generations.
//   node --import tsx bench/boot.ts                 (REPEAT=5 runs per case, median; CASES=a,b to pick)
// vmhost: a vmhostd of its own (test/support/daemon.ts); each run is a fresh VM (New-VM on a
// fresh disk, so every boot starts from the same disk content and a fresh NVRAM), timed from
// the Start-VM request to the first GET /vms/:vm that says Heartbeat OK; then Remove-VM.
// Peer: qemu-system-x86_64 started by hand with the same machine, firmware, memory and vCPU,
// the disk served by `qemu-nbd -t -f vhdx` over a unix socket (`-s`: writes go to a
// throwaway overlay, so the Debian base is never written), timed from spawn to the agent's
// first reply on the same virtio-serial port. What vmhost adds on top: the REST call, its
// own block server instead of qemu-nbd, a NIC on its switch, QMP, the sandbox, its checks.
// Ours and the peer alternate; the table prints medians and ours / peer (< 1: ours is faster).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureDebianImage, ensureGuestImage } from '../src/guest/index.ts';
import { PlainQemu, type BootOptions, type Firmware } from '../src/guest/image-test-support.ts';
import { TestDaemon } from '../test/support/daemon.ts';

const REPEAT = Number(process.env.REPEAT ?? 5);
const BOOT_MS = 600_000;
const scratch = mkdtempSync(join(tmpdir(), 'boot-bench-'));
const servers = new Set<ChildProcess>();

interface Case {
  name: string;
  generation: 1 | 2;
  guest: 'test' | 'debian';
  memoryMiB: number;
}
const ALL: Case[] = [
  { name: 'test guest, gen 1', generation: 1, guest: 'test', memoryMiB: 256 },
  { name: 'test guest, gen 2', generation: 2, guest: 'test', memoryMiB: 256 },
  { name: 'Debian 12, gen 1 (SeaBIOS)', generation: 1, guest: 'debian', memoryMiB: 512 },
  { name: 'Debian 12, gen 2 (OVMF, secure boot)', generation: 2, guest: 'debian', memoryMiB: 512 },
];
const picked = process.env.CASES?.split(',').map((s) => s.trim());
const CASES = picked ? ALL.filter((c) => picked.some((p) => c.name.startsWith(p))) : ALL;

function cleanup(): void {
  for (const s of servers) s.kill('SIGKILL');
  rmSync(scratch, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** A blank dynamic VHDX made by qemu-img: the test guest's data disk on both sides (it boots nothing). */
function blankDisk(path: string): string {
  execFileSync('qemu-img', ['create', '-q', '-f', 'vhdx', path, '1G']);
  return path;
}

async function oursOnce(d: TestDaemon, c: Case, run: number, debianBase: string | undefined): Promise<number> {
  const name = `b${run}`;
  const disk = join(scratch, `ours-${run}.vhdx`);
  const cli = async (...args: string[]) => {
    const r = await d.cli(...args);
    if (r.code !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  };
  if (debianBase) await cli('New-VHD', '-Path', disk, '-ParentPath', debianBase, '-Differencing');
  else blankDisk(disk);
  await cli('New-VM', '-Name', name, '-Generation', String(c.generation), '-MemoryStartupBytes', `${c.memoryMiB}MB`, '-VHDPath', disk);
  const t0 = performance.now();
  const r = await d.api('POST', `/api/v1/vms/${name}/start`);
  if (r.status >= 300) throw new Error(`Start-VM: ${r.text}`);
  for (const end = Date.now() + BOOT_MS; ;) {
    const vm = (await d.api('GET', `/api/v1/vms/${name}`)).json as { Heartbeat: string };
    if (vm.Heartbeat === 'OK') break;
    if (Date.now() > end) throw new Error(`${c.name}: no heartbeat after ${BOOT_MS} ms`);
    await sleep(50);
  }
  const ms = performance.now() - t0;
  await cli('Stop-VM', name, '-TurnOff');
  await cli('Remove-VM', name, '-Force');
  rmSync(disk, { force: true });
  return ms;
}

async function peerOnce(c: Case, run: number, debianBase: string | undefined, kernel: BootOptions['kernel']): Promise<number> {
  const sock = join(scratch, `peer-${run}.sock`);
  const file = debianBase ?? blankDisk(join(scratch, `peer-${run}.vhdx`));
  const nbd = spawn('qemu-nbd', ['-t', '-s', '-f', 'vhdx', '-k', sock, file], { stdio: 'ignore' });
  servers.add(nbd);
  try {
    for (let i = 0; i < 400 && !existsSync(sock); i++) await sleep(25);
    const firmware: Firmware = c.generation === 1 ? { kind: 'bios' } : { kind: 'uefi', secureBoot: c.guest === 'debian' };
    const t0 = performance.now();
    const vm = new PlainQemu({ nbdSocket: sock, firmware, bus: c.generation === 1 ? 'ide' : 'scsi', memoryMiB: c.memoryMiB, ...(kernel && c.guest === 'test' ? { kernel } : {}) });
    try {
      await vm.agent.connect();
      await vm.agent.waitReady(BOOT_MS);
      return performance.now() - t0;
    } finally {
      await vm.close();
    }
  } finally {
    nbd.kill('SIGTERM');
    servers.delete(nbd);
    rmSync(sock, { force: true });
  }
}

async function main(): Promise<void> {
  const guest = await ensureGuestImage();
  const debian = CASES.some((c) => c.guest === 'debian') ? (await ensureDebianImage()).disk : undefined;
  // The test guest's command line as vmhost gives it (src/host/vm-runtime.ts), hostname aside.
  const kernel = { kernel: guest.kernel, initrd: guest.initrd, append: 'console=ttyS0 quiet panic=-1 vmhost.hostname=bench' };
  const d = await TestDaemon.start(join(scratch, 'data'));
  const rows: string[] = [];
  try {
    for (const c of CASES) {
      const ours: number[] = [], peer: number[] = [];
      for (let run = 0; run < REPEAT; run++) {
        const base = c.guest === 'debian' ? debian : undefined;
        ours.push(await oursOnce(d, c, run, base));
        peer.push(await peerOnce(c, run, base, kernel));
        process.stderr.write(`${c.name} #${run + 1}: vmhost ${Math.round(ours.at(-1)!)} ms, QEMU + qemu-nbd ${Math.round(peer.at(-1)!)} ms (load ${loadavg()[0]!.toFixed(1)})\n`);
      }
      const [o, p] = [median(ours), median(peer)];
      rows.push(`| ${c.name} | ${(o / 1000).toFixed(2)} s | ${(p / 1000).toFixed(2)} s | ${(o / p).toFixed(2)} |`);
    }
  } finally {
    await d.stop();
  }
  console.log(`Start-VM → Heartbeat OK, median of ${REPEAT} (TCG, ${new Date().toISOString().slice(0, 10)})\n`);
  console.log('| case | vmhost | QEMU + qemu-nbd by hand | vmhost / peer |\n|---|---|---|---|');
  for (const r of rows) console.log(r);
}

await main();
