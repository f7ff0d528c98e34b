// The first thing an admin does with a host, end to end through the real CLI, daemon, QEMU
// and test guest: create, start, see it boot, reach into it, save/restore, stop, turn off.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestDaemon, waitFor } from './support/daemon.ts';

interface Vm { Name: string; State: string; Heartbeat: string; GuestKvp: Record<string, unknown>; UptimeSeconds: number; MemoryAssigned: number; ProcessId: number | null }

describe('VM lifecycle through the CLI', () => {
  let d: TestDaemon;
  before(async () => { d = await TestDaemon.start(); });
  after(async () => { await d?.stop(); });

  async function getVm(name: string): Promise<Vm> {
    const r = await d.cli('Get-VM', '-Name', name, '-Json');
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Vm;
  }

  async function guestUptime(name: string): Promise<number> {
    const r = await d.cli('Invoke-Command', '-VMName', name, '-ScriptBlock', 'cut -d" " -f1 /proc/uptime');
    assert.equal(r.code, 0, r.stderr);
    return Number(r.stdout.trim());
  }

  test('New-VM + Start-VM boots the test guest: Running, Heartbeat OK, KVP hostname within 30 s', async () => {
    const created = await d.cli('New-VM', '-Name', 't1', '-MemoryStartupBytes', '256MB');
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /t1\s+Off/);
    const t0 = Date.now();
    const started = await d.cli('Start-VM', '-Name', 't1');
    assert.equal(started.code, 0, started.stderr);
    const vm = await waitFor('t1 Running with heartbeat and KVP', 30_000, async () => {
      const v = await getVm('t1');
      return v.State === 'Running' && v.Heartbeat === 'OK' && v.GuestKvp.FullyQualifiedDomainName ? v : undefined;
    });
    console.log(`boot to heartbeat OK + KVP: ${Date.now() - t0} ms`);
    assert.equal(vm.GuestKvp.FullyQualifiedDomainName, 't1');
    assert.equal(vm.MemoryAssigned, 256 * 1024 * 1024);
    const services = JSON.parse((await d.cli('Get-VMIntegrationService', '-VMName', 't1', '-Json')).stdout) as { Name: string; PrimaryStatusDescription: string }[];
    assert.equal(services.find((s) => s.Name === 'Heartbeat')?.PrimaryStatusDescription, 'OK');
  });

  test('Invoke-Command prints the guest kernel version and exits with the script\'s code', async () => {
    const r = await d.cli('Invoke-Command', '-VMName', 't1', '-ScriptBlock', 'uname -r; echo oops >&2; exit 3');
    assert.equal(r.code, 3);
    const kvp = (await getVm('t1')).GuestKvp;
    assert.equal(r.stdout.trim(), kvp.OSVersion);
    assert.match(r.stdout, /^\d+\.\d+\.\d+.*amd64/);
    assert.equal(r.stderr, 'oops\n');
  });

  test('invalid requests give a clear error and change nothing', async () => {
    const before = await d.cli('Get-VM', '-Json');
    const cases: [string[], RegExp, number][] = [
      [['Start-VM', '-Name', 't1'], /Cannot Start VM 't1' because it is Running/, 4],
      [['New-VM', '-Name', 't1'], /already exists/, 4],
      [['New-VM', '-Name', 'small', '-MemoryStartupBytes', '3MB'], /MemoryStartupBytes.*minimum of 32 MB/, 2],
      [['New-VM', '-Name', 'x', '-Frobnicate', '1'], /parameter name 'Frobnicate'/, 2],
      [['Get-VM', '-Name', 'nope'], /unable to find a virtual machine with name 'nope'/, 3],
      [['Set-VM', '-Name', 't1', '-ProcessorCount', '2'], /because it is Running/, 4],
    ];
    for (const [args, re, code] of cases) {
      const r = await d.cli(...args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    }
    const afterList = JSON.parse((await d.cli('Get-VM', '-Json')).stdout) as Vm[];
    assert.deepEqual(afterList.map((v) => [v.Name, v.State]), (JSON.parse(before.stdout) as Vm[]).map((v) => [v.Name, v.State]));
  });

  test('Save-VM then Start-VM resumes the same guest: its uptime continues', async () => {
    const marker = `m${Date.now()}`;
    assert.equal((await d.cli('Invoke-Command', '-VMName', 't1', '-ScriptBlock', `echo ${marker} > /tmp/marker`)).code, 0);
    const upBefore = await guestUptime('t1');
    const saved = await d.cli('Save-VM', '-Name', 't1');
    assert.equal(saved.code, 0, saved.stderr);
    assert.equal((await getVm('t1')).State, 'Saved');
    assert.equal((await getVm('t1')).ProcessId, null);
    const started = await d.cli('Start-VM', 't1');
    assert.equal(started.code, 0, started.stderr);
    await waitFor('heartbeat after restore', 20_000, async () => (await getVm('t1')).Heartbeat === 'OK');
    const upAfter = await guestUptime('t1');
    assert.ok(upAfter >= upBefore, `guest uptime continues (${upBefore} → ${upAfter})`);
    const r = await d.cli('Invoke-Command', '-VMName', 't1', '-ScriptBlock', 'cat /tmp/marker');
    assert.equal(r.stdout.trim(), marker, 'the guest\'s memory came back');
  });

  test('Suspend-VM / Resume-VM', async () => {
    assert.equal((await d.cli('Suspend-VM', 't1')).code, 0);
    const paused = await getVm('t1');
    assert.equal(paused.State, 'Paused');
    assert.equal(paused.Heartbeat, 'Paused');
    assert.equal((await d.cli('Resume-VM', 't1')).code, 0);
    assert.equal((await getVm('t1')).State, 'Running');
  });

  test('Stop-VM shuts the guest down through the agent; the serial log shows it', async () => {
    await waitFor('heartbeat', 20_000, async () => (await getVm('t1')).Heartbeat === 'OK');
    const r = await d.cli('Stop-VM', '-Name', 't1');
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await getVm('t1')).State, 'Off');
    const log = (await d.cli('Get-VMConsole', 't1')).stdout;
    assert.match(log, /vmhost-guest: shutting down/);
    const events = JSON.parse((await d.cli('Get-VMEvent', 't1', '-Json')).stdout) as { Message: string }[];
    assert.ok(events.some((e) => /integration services agent/.test(e.Message)), 'stopped through the agent');
  });

  test('Stop-VM -TurnOff kills a running guest at once', async () => {
    assert.equal((await d.cli('Start-VM', 't1')).code, 0);
    const pid = (await getVm('t1')).ProcessId!;
    const r = await d.cli('Stop-VM', 't1', '-TurnOff');
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await getVm('t1')).State, 'Off');
    assert.throws(() => process.kill(pid, 0), 'QEMU is gone');
  });
});
