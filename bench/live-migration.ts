// Move-VM's cost next to QEMU's own live migration (the peer, the lower bound).
//   node --import tsx bench/live-migration.ts        (REPEAT=3 by default; MEM=256 MiB)
// Peer: two hand-started QEMUs (the test guest, TCG) on this machine, the source migrating to
// the destination's `-incoming unix:` socket directly. Ours: a test guest on host A moved to
// host B and back (Move-VM through the API: ticket from the destination, the relay, held disk,
// commit), with each performance option (TCPIP, Compression). Printed per run: total time
// (Move-VM's wall time; QEMU's total-time for the peer), QEMU's downtime, and our blackout
// estimate = QEMU's downtime + the destination's commit (from the source letting go to the VM
// resumed and announced, from its VM_MOVED_IN event); test/move-vm.test.ts measures the
// blackout a pinging peer sees. Ratios: ours / peer.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureGuestImage } from '../src/guest/index.ts';
import { QmpClient, migrateLive, startIncoming } from '../src/qemu/index.ts';
import { tuningFor } from '../src/host/index.ts';
import { TestDaemon, waitFor } from '../test/support/daemon.ts';

const REPEAT = Number(process.env.REPEAT ?? 3);
const MEM = Number(process.env.MEM ?? 256);
const scratch = mkdtempSync(join(tmpdir(), 'mig-bench-'));
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Run { totalMs: number; downtimeMs: number; blackoutMs: number }

async function qemu(name: string, incoming: boolean): Promise<{ qmp: QmpClient; kill(): void }> {
  const img = await ensureGuestImage();
  const sock = join(scratch, `${name}.qmp`);
  const p = spawn('qemu-system-x86_64', ['-nodefaults', '-display', 'none', '-accel', 'tcg', '-m', String(MEM), '-kernel', img.kernel, '-initrd', img.initrd,
    '-append', 'console=ttyS0 quiet panic=-1', '-serial', 'null', '-qmp', `unix:${sock},server=on,wait=off`, ...(incoming ? ['-incoming', 'defer'] : [])], { stdio: 'ignore' });
  await waitFor(`${name} QMP`, 30_000, async () => QmpClient.connect(sock).then((q) => { (globalThis as Record<string, unknown>)[name] = q; return true; }, () => false));
  return { qmp: (globalThis as Record<string, unknown>)[name] as QmpClient, kill: () => p.kill('SIGKILL') };
}

async function peer(option: 'TCPIP' | 'Compression'): Promise<Run> {
  const src = await qemu('src', false);
  const dst = await qemu('dst', true);
  try {
    await sleep(5000); // the guest boots into its shell
    const uri = `unix:${join(scratch, 'mig.sock')}`;
    await startIncoming(dst.qmp, uri, tuningFor(option));
    const r = await migrateLive(src.qmp, uri, tuningFor(option));
    return { totalMs: r.totalTimeMs ?? NaN, downtimeMs: r.downtimeMs ?? NaN, blackoutMs: r.downtimeMs ?? NaN };
  } finally {
    src.kill();
    dst.kill();
  }
}

async function ours(from: TestDaemon, to: TestDaemon): Promise<Run> {
  const vmId = ((await from.api('GET', '/api/v1/vms/bench')).json as { Id: string }).Id;
  const ticket = (await to.api('POST', '/api/v1/migrations/tickets', { VMId: vmId })).json as { Ticket: string };
  const t0 = Date.now();
  const r = await from.api('POST', '/api/v1/vms/bench/move', { DestinationHost: `127.0.0.1:${to.port}`, Ticket: ticket.Ticket });
  const totalMs = Date.now() - t0;
  if (r.status !== 200) {
    const tail = (d: TestDaemon) => readFileSync(join(d.dataDir, 'events.jsonl'), 'utf8').split('\n').slice(-6).join('\n');
    throw new Error(`Move-VM failed: ${r.text}\nsource events:\n${tail(from)}\ndestination events:\n${tail(to)}`);
  }
  await sleep(500); // the event log is written behind the answer
  const out = [...readFileSync(join(from.dataDir, 'events.jsonl'), 'utf8').matchAll(/VM moved to [^"]*downtime (\d+) ms/g)].at(-1);
  const inn = [...readFileSync(join(to.dataDir, 'events.jsonl'), 'utf8').matchAll(/announced (\d+) ms after the source let go/g)].at(-1);
  const downtimeMs = Number(out?.[1]);
  return { totalMs, downtimeMs, blackoutMs: downtimeMs + Number(inn?.[1]) };
}

const show = (label: string, runs: Run[]) => {
  const m = { total: median(runs.map((r) => r.totalMs)), down: median(runs.map((r) => r.downtimeMs)), black: median(runs.map((r) => r.blackoutMs)) };
  console.log(`${label.padEnd(26)} total ${String(m.total).padStart(6)} ms  downtime ${String(m.down).padStart(4)} ms  blackout ≈ ${String(m.black).padStart(4)} ms   (runs: ${runs.map((r) => r.totalMs).join(', ')})`);
  return m;
};

console.log(`# ${MEM} MiB test guest, TCG, REPEAT=${REPEAT}, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
const [a, b] = await Promise.all([TestDaemon.start(), TestDaemon.start()]);
try {
  for (const d of [a, b]) await d.api('PATCH', '/api/v1/host/migration', { VirtualMachineMigrationEnabled: true });
  await a.api('POST', '/api/v1/vms', { Name: 'bench', MemoryStartupBytes: MEM * 1024 * 1024 });
  await a.api('POST', '/api/v1/vms/bench/start');
  await waitFor('guest heartbeat', 120_000, async () => ((await a.api('GET', '/api/v1/vms/bench')).json as { Heartbeat: string }).Heartbeat === 'OK');
  let moves = 0;
  for (const option of ['TCPIP', 'Compression'] as const) {
    for (const d of [a, b]) await d.api('PATCH', '/api/v1/host/migration', { VirtualMachineMigrationPerformanceOption: option });
    const mine: Run[] = [];
    const theirs: Run[] = [];
    for (let i = 0; i < REPEAT; i++) {
      // The guest goes back and forth: each move starts where the last one left it.
      try {
        mine.push(await (moves % 2 === 0 ? ours(a, b) : ours(b, a)));
        moves++;
      } catch (e) {
        console.log(`Move-VM ${option} failed: ${(e as Error).message.split('\n')[0]}`);
      }
      theirs.push(await peer(option));
    }
    const p = show(`QEMU→QEMU ${option}`, theirs);
    if (mine.length === 0) continue;
    const o = show(`Move-VM ${option}`, mine);
    console.log(`ratio ours/peer ${option}: total ${(o.total / p.total).toFixed(2)}, blackout ${(o.black / p.black).toFixed(2)}`);
  }
} finally {
  await Promise.all([a.stop(), b.stop()]);
}
console.log(`# load average after ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
