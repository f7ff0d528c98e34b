// A daemon crash loses nothing: VMs keep running and the next daemon re-attaches to them;
// a QEMU that dies is reported Off with the reason.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestDaemon, waitFor } from './support/daemon.ts';

interface Vm { Name: string; State: string; Heartbeat: string; ProcessId: number | null; Status: string }

describe('daemon crash and QEMU death', () => {
  let d: TestDaemon;
  before(async () => { d = await TestDaemon.start(); });
  after(async () => { await d?.stop(); });

  const vm = async (name: string) => (await d.api('GET', `/api/v1/vms/${name}`)).json as Vm;

  test('SIGKILL of the daemon while two VMs run: after restart both are Running with their state', async () => {
    for (const name of ['c1', 'c2']) {
      assert.equal((await d.cli('New-VM', name, '-MemoryStartupBytes', '128MB')).code, 0);
    }
    const start = await d.cli('Start-VM', '-Name', 'c*');
    assert.equal(start.code, 0, start.stderr);
    // Two TCG boots at once (5-15 s each here, alone), maybe beside another file's guests on
    // a 2-core machine: 90 s like vm-network's boot wait. The boot time is not under test.
    for (const name of ['c1', 'c2']) await waitFor(`${name} heartbeat`, 90_000, async () => (await vm(name)).Heartbeat === 'OK');
    for (const name of ['c1', 'c2']) {
      assert.equal((await d.cli('Invoke-Command', '-VMName', name, '-ScriptBlock', `echo ${name}-state > /tmp/s`)).code, 0);
    }
    const pids = [(await vm('c1')).ProcessId, (await vm('c2')).ProcessId];
    await d.kill();
    await d.launch();
    for (const [i, name] of ['c1', 'c2'].entries()) {
      const v = await vm(name);
      assert.equal(v.State, 'Running', name);
      assert.equal(v.ProcessId, pids[i], `${name} is the same QEMU`);
      await waitFor(`${name} heartbeat after restart`, 15_000, async () => (await vm(name)).Heartbeat === 'OK');
      const r = await d.cli('Invoke-Command', '-VMName', name, '-ScriptBlock', 'cat /tmp/s');
      assert.equal(r.stdout.trim(), `${name}-state`);
    }
  });

  test('killing a QEMU process marks its VM Off with an event saying why', async () => {
    const pid = (await vm('c2')).ProcessId!;
    process.kill(pid, 'SIGKILL');
    await waitFor('c2 Off', 10_000, async () => (await vm('c2')).State === 'Off');
    const events = (await d.api('GET', '/api/v1/events?vm=c2')).json as { Message: string; Level: string }[];
    const last = events.at(-1)!;
    assert.match(last.Message, new RegExp(`QEMU process ${pid} exited unexpectedly`));
    assert.equal(last.Level, 'Error');
    assert.match((await vm('c2')).Status, /exited unexpectedly/);
    assert.equal((await vm('c1')).State, 'Running', 'the other VM is untouched');
  });

  test('a QEMU that dies while the daemon is down is Off after restart, with the reason', async () => {
    const pid = (await vm('c1')).ProcessId!;
    await d.kill();
    process.kill(pid, 'SIGKILL');
    await d.launch();
    assert.equal((await vm('c1')).State, 'Off');
    const events = (await d.api('GET', '/api/v1/events?vm=c1')).json as { Message: string }[];
    assert.match(events.at(-1)!.Message, /exited while the daemon was not running/);
  });
});
