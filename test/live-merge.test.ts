// Live merge (issue 10): a running guest writes 4 KiB blocks with O_DIRECT, each with a
// pattern the test can check, while Remove-VMSnapshot merges its 1 GiB differencing disk into
// the base disk — once straight through, once with the daemon SIGKILLed in the middle (the
// restarted daemon re-serves the disks QEMU is reconnecting to and finishes the removal).
// After: no write error in the guest, every acknowledged write in the base disk, the
// chain one file shorter, Test-VHD and qemu-img check clean. And Stop-VM in the middle of a live
// merge: the stop does not wait for the merge (it pauses between chunks), the removal then
// finishes offline on the files the live merge left.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openDiskFile } from '../src/storage/index.ts';
import { TestDaemon, waitFor } from './support/daemon.ts';

const run = (cmd: string, args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((ok) => {
  execFile(cmd, args, { maxBuffer: 64 << 20 }, (e, stdout, stderr) => ok({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, stdout, stderr }));
});

const GiB = 1 << 30;
const BLOCKS = GiB / 4096;
/** The guest's i-th write: 4 KiB of byte i % 16 + 1 at block (i * 7919) mod 2^18 — all distinct for i < 2^18. */
const blockOf = (i: number) => (i * 7919) % BLOCKS;

describe('live merge', () => {
  let d: TestDaemon;
  before(async () => { d = await TestDaemon.start(); });
  after(async () => { await d?.stop(); });

  const ok = (...args: string[]) => d.ok(...args);
  const guest = async (vm: string, script: string) => (await ok('Invoke-Command', '-VMName', vm, '-ScriptBlock', script, '-TimeoutSeconds', '120')).trim();
  const leaf = async (vm: string) => (JSON.parse(await ok('Get-VMHardDiskDrive', vm, '-ControllerType', 'SCSI', '-Json')) as { Path: string }[])[0]!.Path;

  /** A VM on base ← child, the child holding `bytes` (1 GiB) of 0x61, running, with the writer going unless `writer` is false ('no-boot-wait': QEMU started, the guest not waited for). */
  async function setup(vm: string, bytes = GiB, writer: boolean | 'no-boot-wait' = true): Promise<{ base: string; child: string; dev: string }> {
    const base = join(d.dataDir, `${vm}.vhdx`);
    await ok('New-VHD', '-Path', base, '-SizeBytes', '2GB', '-Dynamic');
    await ok('New-VM', vm, '-MemoryStartupBytes', '256MB', '-Generation', '2');
    await ok('Add-VMHardDiskDrive', '-VMName', vm, '-Path', base, '-ControllerType', 'SCSI');
    await ok('Checkpoint-VM', vm, '-SnapshotName', 'ck');
    const child = await leaf(vm);
    const { NbdUri } = JSON.parse(await ok('Mount-VHD', '-Path', child, '-Json')) as { NbdUri: string };
    const fill = await run('qemu-io', ['-f', 'raw', '-c', `write -P 0x61 0 ${bytes}`, NbdUri]);
    await ok('Dismount-VHD', '-Path', child);
    assert.equal(fill.code, 0, fill.stderr);
    await ok('Start-VM', vm);
    if (writer === 'no-boot-wait') return { base, child, dev: '' };
    await waitFor(`${vm} heartbeat`, 120_000, async () => (JSON.parse(await ok('Get-VM', vm, '-Json')) as { Heartbeat: string }).Heartbeat === 'OK');
    const dev = await guest(vm, 'ls /sys/bus/scsi/devices/0:0:0:0/block/');
    if (!writer) return { base, child, dev };
    await guest(vm, 'for b in $(seq 1 16); do awk -v b=$b \'BEGIN { s = sprintf("%c", b); for (i = 0; i < 4096; i++) printf "%s", s }\' > /tmp/p$b; done; : > /tmp/wlog');
    const loop = `touch /tmp/detached; i=0; while [ ! -e /tmp/stop ]; do o=$(( (i * 7919) % ${BLOCKS} )); `
      + `dd if=/tmp/p$(( i % 16 + 1 )) of=/dev/${dev} bs=4096 seek=$o count=1 oflag=direct conv=notrunc 2>/dev/null || { echo ERR $i >> /tmp/wlog; exit 1; }; `
      + 'echo $i >> /tmp/wlog; i=$((i+1)); done; echo DONE >> /tmp/wlog';
    // setsid and no inherited output: the agent's exec must not wait for the writer (as in storage-crash.test.ts).
    await guest(vm, `setsid sh -c '${loop}' >/dev/null 2>&1 & while [ ! -f /tmp/detached ]; do sleep 0.1; done; echo started`);
    assert.equal(await guest(vm, 'od -An -tu1 -N1 /tmp/p3'), '3', 'the pattern files hold their byte');
    await waitFor('the writer under way', 60_000, async () => Number(await guest(vm, 'wc -l < /tmp/wlog')) >= 5);
    return { base, child, dev };
  }

  /** Stop the writer; the indexes of its acknowledged writes (a write error fails the test). */
  async function stopWriter(vm: string): Promise<number[]> {
    await guest(vm, 'touch /tmp/stop');
    const log = await waitFor('the writer to stop', 60_000, async () => {
      const l = await guest(vm, 'cat /tmp/wlog');
      return /DONE|ERR/.test(l) ? l : undefined;
    });
    assert.doesNotMatch(log, /ERR/, 'a guest write failed');
    return log.split('\n').filter((l) => /^\d+$/.test(l)).map(Number);
  }

  /** Every acknowledged write, and the child's 0x61 everywhere else in its first `bytes`, are in `file` (the VM off). */
  async function verify(file: string, writes: number[], bytes = GiB): Promise<void> {
    const expect = new Map<number, number>(writes.map((i) => [blockOf(i), i % 16 + 1]));
    const disk = await openDiskFile(file, { readOnly: true });
    try {
      const buf = new Uint8Array(64 << 20);
      for (let o = 0; o < bytes; o += buf.length) {
        await disk.read(buf, o);
        for (let b = 0; b < buf.length / 4096; b++) {
          const blk = o / 4096 + b;
          const want = expect.get(blk) ?? 0x61;
          const at = b * 4096;
          for (let k = at; k < at + 4096; k += 512) if (buf[k] !== want) assert.fail(`block ${blk}: byte ${buf[k]}, want ${want}`);
        }
      }
    } finally {
      await disk.close();
    }
    assert.deepEqual(JSON.parse(await ok('Test-VHD', file, '-Json')), true);
    const check = await run('qemu-img', ['check', '-f', 'vhdx', file]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
  }

  test('Remove-VMSnapshot of a running guest that writes: merged live into the base disk, no write lost', { timeout: 900_000 }, async () => {
    const { base, child } = await setup('lm1');
    const before = Number(await guest('lm1', 'wc -l < /tmp/wlog'));
    await ok('Remove-VMSnapshot', 'lm1', 'ck');
    const during = Number(await guest('lm1', 'wc -l < /tmp/wlog')) - before;
    assert.ok(during > 0, 'the guest wrote during the merge');
    assert.equal(await leaf('lm1'), base, 'the VM runs on the base disk');
    assert.equal(existsSync(child), false, 'the chain is one file shorter');
    assert.equal(JSON.parse((await ok('Get-VMSnapshot', 'lm1', '-Json')) || '[]').length, 0);
    const writes = await stopWriter('lm1');
    await ok('Stop-VM', 'lm1', '-TurnOff');
    await verify(base, writes);
  });

  // Turn-off (the default suite: no guest boot to wait for); a graceful Stop-VM (the guest's agent shuts it down) and Save-VM under VMHOST_LONG=1.
  for (const how of ['TurnOff', 'Shutdown', 'Save'] as const) {
    const vm = `lm3-${how.toLowerCase()}`;
    const cmdlet = { TurnOff: 'Stop-VM -TurnOff', Shutdown: 'Stop-VM', Save: 'Save-VM' }[how];
    test(`${cmdlet} in the middle of a live merge stops the VM without waiting for the merge; the removal finishes offline, nothing lost`,
      { timeout: 300_000, skip: how !== 'TurnOff' && process.env.VMHOST_LONG !== '1' ? 'VMHOST_LONG=1 runs this variant' : false }, async () => {
      const bytes = 512 << 20;
      const { base, child } = await setup(vm, bytes, how === 'Shutdown' ? false : 'no-boot-wait');
      interface JobView { Id: string; State: string; PercentComplete: number; EndTime?: string }
      const jobOf = async (id: string) => (await d.api('GET', `/api/v1/jobs/${id}`)).json as JobView;
      const removal = (await d.api('DELETE', `/api/v1/vms/${vm}/snapshots/ck?wait=false`)).json as JobView;
      // The stop lands by the merge's own progress (a few chunks copied), not by a sleep: polled every 20 ms.
      for (let j = await jobOf(removal.Id); j.PercentComplete < 2; j = await jobOf(removal.Id)) {
        assert.equal(j.State, 'Running', `the merge ended before the stop could land: ${JSON.stringify(j)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const stop = (await d.api('POST', `/api/v1/vms/${vm}/${how === 'Save' ? 'save' : 'stop'}?wait=false`, how === 'TurnOff' ? { TurnOff: true } : how === 'Save' ? undefined : {})).json as JobView;
      const ended = (id: string) => waitFor(`job ${id} to end`, 240_000, async () => {
        const j = await jobOf(id);
        return j.State === 'Running' ? undefined : j;
      });
      const stopped = await ended(stop.Id);
      assert.equal(stopped.State, 'Completed', JSON.stringify(stopped));
      assert.equal((await jobOf(removal.Id)).State, 'Running', `${cmdlet} ended while the merge still had work: it did not wait for it`);
      const done = await ended(removal.Id);
      assert.equal(done.State, 'Completed', JSON.stringify(done));
      const events = (await d.api('GET', `/api/v1/events?vm=${vm}`)).json as { Code: string }[];
      assert.ok(events.some((e) => e.Code === 'VM_CHECKPOINT_MERGE_PAUSED'), 'the live merge paused for the stop');
      assert.equal((JSON.parse(await ok('Get-VM', vm, '-Json')) as { State: string }).State, how === 'Save' ? 'Saved' : 'Off');
      assert.equal(await leaf(vm), base, 'the VM is on the base disk');
      assert.equal(existsSync(child), false, 'the chain is one file shorter');
      assert.equal(JSON.parse((await ok('Get-VMSnapshot', vm, '-Json')) || '[]').length, 0);
      await verify(base, [], bytes);
    });
  }

  test('a daemon SIGKILL in the middle of a live merge: the restarted daemon finishes it, the guest never sees an error', { timeout: 900_000 }, async () => {
    const { base, child } = await setup('lm2');
    const removal = (await d.api('DELETE', '/api/v1/vms/lm2/snapshots/ck?wait=false')).json as { Id: string };
    // The kill lands by the merge's own progress, polled through the API every 20 ms (a CLI call per poll
    // can take seconds on a loaded machine, long enough for the merge to pass a narrow window unseen).
    for (;;) {
      const j = (await d.api('GET', `/api/v1/jobs/${removal.Id}`)).json as { PercentComplete: number; State: string };
      assert.equal(j.State, 'Running', `the merge ended before the kill could land: ${JSON.stringify(j)}`);
      if (j.PercentComplete >= 30) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await d.kill();
    await d.launch();
    await waitFor('the removal resumed and finished', 300_000, async () => JSON.parse((await ok('Get-VMSnapshot', 'lm2', '-Json')) || '[]').length === 0);
    assert.equal(await leaf('lm2'), base);
    assert.equal(existsSync(child), false);
    const writes = await stopWriter('lm2');
    await ok('Stop-VM', 'lm2', '-TurnOff');
    await verify(base, writes);
  });
});
