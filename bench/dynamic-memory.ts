// Dynamic memory (issue 12), in three parts.
//   node --import tsx bench/dynamic-memory.ts        (CAP_MB=1024, ROUNDS=3 by default)
// 1. The balancer's own cost: CPU time of one `balance()` round for 3, 30 and 300 VMs (pure,
//    in-process; what the daemon spends each second besides its QMP and agent calls).
// 2. Reaction time: one test guest (min 128, startup 256, max 1 GB, Buffer 50) starts holding
//    memory (test/support/memory-hog.sh, 256 MB); printed, per round, the time from the request
//    that starts it (the agent's exec round trip and the wait until the detached program runs
//    in its own session are included) until Get-VM's MemoryAssigned first grows past what the guest had,
//    and until it is past its startup memory.
// 3. Density: idle test guests of 256 MB startup memory started one after another under a fixed
//    host cap (--memory-capacity CAP_MB) until Start-VM is refused, static memory against dynamic
//    (min 128 MB); the dynamic run counts a guest only once it is up and out of smart paging.
import { readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { balance, type BalancerVm } from '../src/host/memory-balancer.ts';
import { ensureGuestImage } from '../src/guest/index.ts';
import { ROOT, TestDaemon, waitFor } from '../test/support/daemon.ts';

const MB = 1024 * 1024;
const CAP_MB = Number(process.env.CAP_MB ?? 1024);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const load = () => loadavg()[0]!.toFixed(1);

interface Vm { MemoryAssigned: number; Heartbeat: string; SmartPagingFileInUse: boolean }

function balancerCost(): void {
  for (const n of [3, 30, 300]) {
    const vms: BalancerVm[] = Array.from({ length: n }, (_, i) => ({
      id: `vm${i}`, minimumBytes: 128 * MB, maximumBytes: 1024 * MB, assignedBytes: 256 * MB, demandBytes: (100 + (i * 37) % 400) * MB, priority: (i * 13) % 101,
    }));
    const host = { capacityBytes: n * 200 * MB, reserveBytes: 0, fixedBytes: 0 };
    const rounds = 2000;
    const cpu0 = process.cpuUsage();
    for (let r = 0; r < rounds; r++) balance(vms, host);
    const cpu = process.cpuUsage(cpu0);
    console.log(`balancer: ${n} VMs, ${(((cpu.user + cpu.system) / rounds)).toFixed(1)} µs CPU per round`);
  }
}

async function withDaemon<T>(capMb: number, fn: (d: TestDaemon) => Promise<T>): Promise<T> {
  const d = await TestDaemon.start(undefined, ['--memory-capacity', `${capMb}MB`]);
  try { return await fn(d); } finally { await d.stop(); }
}

const vm = async (d: TestDaemon, name: string): Promise<Vm> => (await d.api('GET', `/api/v1/vms/${name}`)).json as Vm;

async function newGuest(d: TestDaemon, name: string, dynamic: boolean): Promise<void> {
  await d.ok('New-VM', name, '-MemoryStartupBytes', '256MB');
  if (dynamic) await d.ok('Set-VMMemory', name, '-DynamicMemoryEnabled', '$true', '-MinimumBytes', '128MB', '-MaximumBytes', '1GB', '-Buffer', '50');
}

async function reaction(): Promise<void> {
  const hog = await readFile(join(ROOT, 'test/support/memory-hog.sh'), 'utf8');
  await withDaemon(CAP_MB, async (d) => {
    await newGuest(d, 'r', true);
    await d.ok('Start-VM', 'r');
    await waitFor('heartbeat', 120_000, async () => (await vm(d, 'r')).Heartbeat === 'OK');
    for (let round = 1; round <= ROUNDS; round++) {
      const before = await waitFor('settled at its minimum', 60_000, async () => { const v = await vm(d, 'r'); return v.MemoryAssigned <= 140 * MB && v; });
      const t0 = performance.now();
      const r = await d.api('POST', '/api/v1/vms/r/invoke', {
        ScriptBlock: `cat >/tmp/hog.sh <<'HOG'\n${hog}HOG\nrmdir /run/memory-hog 2>/dev/null\nsetsid sh /tmp/hog.sh hold 256 </dev/null >/dev/null 2>&1 &\nuntil [ -d /run/memory-hog ]; do sleep 0.1; done`, TimeoutSeconds: 50,
      });
      if (r.status !== 200) throw new Error(r.text);
      let first = 0;
      await waitFor('past startup', 120_000, async () => {
        const v = await vm(d, 'r');
        if (!first && v.MemoryAssigned > before.MemoryAssigned) first = performance.now() - t0;
        return v.MemoryAssigned > 256 * MB;
      });
      const past = performance.now() - t0;
      console.log(`reaction round ${round}: first growth ${(first / 1000).toFixed(1)} s, past startup ${(past / 1000).toFixed(1)} s (load ${load()})`);
      await d.api('POST', '/api/v1/vms/r/invoke', { ScriptBlock: 'while [ ! -f /run/memory-hog/done ]; do sleep 0.2; done; sh /tmp/hog.sh free', TimeoutSeconds: 50 });
    }
  });
}

async function density(dynamic: boolean): Promise<number> {
  return withDaemon(CAP_MB, async (d) => {
    for (let n = 1; ; n++) {
      const name = `g${n}`;
      await newGuest(d, name, dynamic);
      const r = await d.cli('Start-VM', name);
      if (r.code !== 0) return n - 1;
      // A guest counts once it is up and, with dynamic memory, held in RAM (no paging file).
      await waitFor(`${name} up`, 180_000, async () => { const v = await vm(d, name); return v.Heartbeat === 'OK' && !v.SmartPagingFileInUse; });
      console.log(`density ${dynamic ? 'dynamic' : 'static'}: ${n} guest(s) running (load ${load()})`);
    }
  });
}

balancerCost();
await ensureGuestImage();
console.log(`load at start ${load()}, host cap ${CAP_MB} MB`);
await reaction();
const statics = await density(false);
const dynamics = await density(true);
console.log(`density under ${CAP_MB} MB: static ${statics} guests, dynamic ${dynamics} guests (load ${load()})`);
