// Dynamic memory and smart paging end to end, with three real test guests (minimum 128 MB,
// startup 256 MB, maximum 1 GB) under a host cap (--memory-capacity), so the test means the
// same on any machine. One guest holds memory with the program the test ships
// (support/memory-hog.sh: 8 MB steps into a tmpfs, each once the guest has room for it; Buffer
// 50 % gives it that room as it grows); the
// oracle is Get-VM against the guests' own view: the busy one's MemoryAssigned grows past its
// startup memory while the idle ones shrink toward their minimum, shrinks back once it frees,
// and no guest's kernel log shows an OOM kill. The timeline is printed, not asserted on.
// Then the running-VM rules (the range widens, never narrows); Priority: two guests hold the
// same and want more than the cap has room for, and the one of higher Priority gets its buffer
// while the other is held near what it uses; and smart paging: the daemon is
// restarted with a cap that cannot back the third guest's startup memory even with the others
// at their minimum, so it starts with SmartPagingFileInUse, and once the balancer has it in RAM
// the flag clears and the file is gone.
// VMHOST_LONG=1: the busy guest holds 600 MB (the issue's figure); the default run holds 320 MB.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { access, readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { ensureGuestImage } from '../src/guest/index.ts';
import { ROOT, TestDaemon, waitFor } from './support/daemon.ts';

const haveQemu = spawnSync('qemu-system-x86_64', ['--version']).status === 0;
const ci = process.env.CI === 'true';
const long = process.env.VMHOST_LONG === '1';
const MB = 1024 * 1024;
const HOLD_MB = long ? 600 : 320;
/**
 * Each of the Priority test's two guests holds this (+ ~75 MB the guest uses itself = U): both fit
 * in the cap beside dm1's 128 MB, their 50 % buffers do not (3U > 1152 MB), and the share left to
 * the lower priority one (1152 − 1.5U) stays above what it uses. Pushed below its use, a guest
 * without swap evicts its own page cache and under TCG its agent stops answering for minutes
 * (a VMHOST_LONG run with 400 MB each did that).
 */
const PRIORITY_MB = 352;
const VMS = ['dm1', 'dm2', 'dm3'];

interface Vm { Name: string; State: string; Heartbeat: string; MemoryAssigned: number; MemoryDemand: number; MemoryStatus: string; SmartPagingFileInUse: boolean; SmartPagingFilePath: string; Id: string }

describe('dynamic memory with real guests', { skip: !haveQemu && !ci && 'qemu-system-x86_64 not installed' }, () => {
  let d: TestDaemon;
  const t0 = Date.now();
  const ok = (...args: string[]) => d.ok(...args);
  const vm = async (name: string): Promise<Vm> => (await d.api('GET', `/api/v1/vms/${name}`)).json as Vm;
  const sh = async (name: string, script: string): Promise<string> => {
    const r = await d.api('POST', `/api/v1/vms/${name}/invoke`, { ScriptBlock: script, TimeoutSeconds: 50 });
    assert.equal(r.status, 200, r.text);
    const j = r.json as { StdOut: string; StdErr: string; ExitCode: number };
    const out = Buffer.from(j.StdOut, 'base64').toString();
    assert.equal(j.ExitCode, 0, `${name}: ${script}\n${out}${Buffer.from(j.StdErr, 'base64').toString()}`);
    return out.trim();
  };
  let last = '';
  /** The timeline: seconds since the start, and each VM's assigned / demand in MB with its status, printed when it changes. */
  const line = async (note = ''): Promise<Vm[]> => {
    const vms = await Promise.all(VMS.map(vm));
    const cols = vms.map((v) => `${v.Name} ${Math.round(v.MemoryAssigned / MB)}/${Math.round(v.MemoryDemand / MB)} ${v.MemoryStatus || '-'}${v.SmartPagingFileInUse ? ' paging' : ''}`).join(' | ');
    if (cols !== last) console.log(`# t=${((Date.now() - t0) / 1000).toFixed(1)}s ${cols}${note ? `  ${note}` : ''}`);
    last = cols;
    return vms;
  };
  const heartbeat = (name: string) => waitFor(`${name} heartbeat`, 90_000, async () => (await vm(name)).Heartbeat === 'OK');
  /** Starts the memory program in a guest; back once it runs in its own session (the agent ends what is left of the command's process group). */
  const hold = async (name: string, mb: number) => {
    const hog = await readFile(join(ROOT, 'test/support/memory-hog.sh'), 'utf8');
    await sh(name, `cat >/tmp/memory-hog.sh <<'HOG'\n${hog}HOG\nrm -f /run/memory-hog/done\nsetsid sh /tmp/memory-hog.sh hold ${mb} </dev/null >/tmp/memory-hog.log 2>&1 &\nuntil [ -d /run/memory-hog ]; do sleep 0.1; done`);
  };
  const held = async (name: string) => sh(name, 'cat /run/memory-hog/done 2>/dev/null || true');
  const noOomKill = async (name: string) => assert.equal(await sh(name, 'dmesg | grep -c -i "out of memory" || true'), '0', `${name} OOM-killed a process`);

  before(async () => {
    // 1280 MB: the three startups (768 MB) fit; the busy guest can grow only into what the idle ones give back.
    [d] = await Promise.all([TestDaemon.start(undefined, ['--memory-capacity', '1280MB']), ensureGuestImage()]);
    await Promise.all(VMS.map(async (name) => {
      await ok('New-VM', name, '-MemoryStartupBytes', '256MB');
      await ok('Set-VMMemory', name, '-DynamicMemoryEnabled', '$true', '-MinimumBytes', '128MB', '-MaximumBytes', '1GB', '-Buffer', '50');
    }));
    await Promise.all(VMS.map((name) => ok('Start-VM', name)));
    await Promise.all(VMS.map(heartbeat));
    console.log(`# three guests up in ${((Date.now() - t0) / 1000).toFixed(1)} s (load ${loadavg()[0]!.toFixed(1)})`);
  });

  after(async () => { await d?.stop(); });

  test('the busy guest grows past its startup memory while the idle ones shrink, and shrinks back once it frees', async () => {
    await hold('dm1', HOLD_MB);
    const started = Date.now();
    await waitFor(`dm1 holding ${HOLD_MB} MB`, 180_000, async () => {
      const vms = await line();
      return (await held('dm1')) === String(HOLD_MB) && vms;
    });
    const grown = await waitFor('dm1 past its startup memory, the idle ones below theirs', 60_000, async () => {
      const [busy, ...idle] = await line();
      return busy!.MemoryAssigned > 256 * MB + HOLD_MB * MB / 2 && idle.every((v) => v.MemoryAssigned < 256 * MB) && [busy!, ...idle];
    });
    console.log(`# dm1 held ${HOLD_MB} MB after ${((Date.now() - started) / 1000).toFixed(1)} s (load ${loadavg()[0]!.toFixed(1)})`);
    assert.ok(grown[0]!.MemoryAssigned <= 1024 * MB, 'never above the maximum');
    for (const v of grown.slice(1)) assert.ok(v.MemoryAssigned >= 128 * MB, `${v.Name} never below its minimum`);
    assert.ok(grown.reduce((s, v) => s + v.MemoryAssigned, 0) <= 1280 * MB, 'the host cap holds');

    await sh('dm1', 'sh /tmp/memory-hog.sh free');
    await waitFor('dm1 shrinking back', 60_000, async () => (await line('(freed)'))[0]!.MemoryAssigned < 256 * MB);
    for (const name of VMS) await noOomKill(name);
  });

  test('a running VM\'s range widens (minimum down, maximum up); narrowing it is refused', async () => {
    await ok('Set-VMMemory', 'dm2', '-MinimumBytes', '96MB', '-MaximumBytes', '2GB');
    const m = JSON.parse(await ok('Get-VMMemory', 'dm2', '-Json')) as { Minimum: number; Maximum: number; DynamicMemoryEnabled: boolean; Buffer: number; Priority: number };
    assert.deepEqual([m.Minimum, m.Maximum, m.DynamicMemoryEnabled, m.Buffer, m.Priority], [96 * MB, 2048 * MB, true, 50, 50]);
    for (const [param, value] of [['-MinimumBytes', '192MB'], ['-MaximumBytes', '512MB'], ['-StartupBytes', '512MB']] as const) {
      const r = await d.cli('Set-VMMemory', 'dm2', param, value);
      assert.notEqual(r.code, 0, `${param} ${value} on a running VM`);
      assert.match(r.stderr, /MEMORY_CHANGE_NEEDS_OFF|turn it off first/, r.stderr);
    }
    await ok('Set-VMMemory', 'dm2', '-Priority', '80', '-Buffer', '50');
    // /metrics carries what Get-VM shows.
    const metrics = (await d.api('GET', '/metrics')).text;
    for (const family of ['vmhost_vm_memory_assigned_bytes', 'vmhost_vm_memory_demand_bytes']) {
      assert.match(metrics, new RegExp(`^${family}\\{[^}]*vm="dm2"[^}]*\\} [1-9]`, 'm'), family);
    }
  });

  // Under VMHOST_LONG only: in a clean-clone CI run (with the TCG RAM pad, which this test had not
  // run with before) dm2's agent stopped answering for 55 s while it allocated beside dm3 — the
  // stall described above, not understood yet (issue 12's note) — and left dm2 stuck for the tests after it.
  test('Priority: two guests hold the same and both want more than the host has; the higher Priority one gets its buffer first', { skip: !long && 'VMHOST_LONG=1 only: a guest stalled in CI (see the comment)' }, async () => {
    // dm2 has Priority 80 (the test above), dm3 the default 50; both Buffer 50 %. Each holds
    // PRIORITY_MB: what both use fits in the cap beside dm1's minimum, what both want (use + 50 %)
    // does not. dm2 gets its whole buffer first and dm3 what is left (equal priorities would
    // split the rest evenly).
    await waitFor('the three at or below their startup memory', 60_000, async () => (await line()).every((v) => v.MemoryAssigned <= 256 * MB));
    await Promise.all([hold('dm2', PRIORITY_MB), hold('dm3', PRIORITY_MB)]);
    const [, high, low] = await waitFor(`dm2 holding ${PRIORITY_MB} MB with more memory than dm3`, 120_000, async () => {
      const vms = await line('(both holding)');
      return (await held('dm2')) === String(PRIORITY_MB) && vms[1]!.MemoryAssigned > vms[2]!.MemoryAssigned + 64 * MB && vms;
    });
    console.log(`# Priority 80: ${high!.MemoryAssigned / MB} MB, Priority 50: ${low!.MemoryAssigned / MB} MB`);
    assert.ok(high!.MemoryAssigned + low!.MemoryAssigned + 128 * MB <= 1280 * MB, 'the host cap holds');
    // Once dm2 lets go, dm3 gets the room it was short of.
    await sh('dm2', 'sh /tmp/memory-hog.sh free');
    await waitFor(`dm3 holding ${PRIORITY_MB} MB`, 120_000, async () => (await held('dm3')) === String(PRIORITY_MB) && line('(dm2 freed)'));
    await sh('dm3', 'sh /tmp/memory-hog.sh free');
    for (const name of ['dm2', 'dm3']) await noOomKill(name);
  });

  test('smart paging: a restart the host cannot back starts from a paging file, which goes once the guest fits in RAM', async () => {
    await ok('Stop-VM', 'dm3', '-TurnOff');
    // Let dm1 and dm2 settle near their minimum, then cap the host below what dm3's startup memory needs beside them.
    await waitFor('dm1 and dm2 near their minimum', 60_000, async () => (await line()).slice(0, 2).every((v) => v.MemoryAssigned < 200 * MB));
    await d.terminate();
    d.args = ['--memory-capacity', '448MB'];
    await d.launch();
    await ok('Start-VM', 'dm3');
    const paging = await vm('dm3');
    const file = join(paging.SmartPagingFilePath, `${paging.Id}.smartpaging`);
    assert.equal(paging.SmartPagingFileInUse, true, 'started with a smart paging file');
    await access(file);
    await heartbeat('dm3');
    await waitFor('dm3 out of its paging file', 90_000, async () => !(await line())[2]!.SmartPagingFileInUse);
    await assert.rejects(access(file), 'the paging file is removed');
    await noOomKill('dm3');
  });
});
