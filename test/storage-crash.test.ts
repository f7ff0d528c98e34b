// A daemon crash is not a power loss: SIGKILL of vmhostd while a guest writes to its VHDX.
// The guest keeps running (QEMU's NBD client reconnects to the next daemon's block server),
// its I/O resumes with no error in the guest kernel log, and every write the guest saw
// acknowledged is in the file afterwards. VMHOST_LONG=1 kills the daemon 20 times.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openDiskFile } from '../src/storage/index.ts';
import { TestDaemon, sleep, waitFor } from './support/daemon.ts';

const KILLS = process.env.VMHOST_LONG ? 20 : 3;
const BLOCKS = process.env.VMHOST_LONG ? 3000 : 600;

/** What the guest writes into 4 KiB block i: its number as "%08d\n", repeated. */
function expected(i: number): Buffer {
  return Buffer.from(`${String(i).padStart(8, '0')}\n`.repeat(456).slice(0, 4096));
}

describe('daemon crash while a guest writes', () => {
  let d: TestDaemon;
  before(async () => { d = await TestDaemon.start(); });
  after(async () => { await d?.stop(); });

  const guest = async (script: string) => {
    const r = await d.cli('Invoke-Command', '-VMName', 'w1', '-ScriptBlock', script);
    assert.equal(r.code, 0, `${script}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const vm = async () => (await d.api('GET', '/api/v1/vms/w1')).json as { State: string; Heartbeat: string; ProcessId: number };

  test(`${KILLS} SIGKILLs of the daemon during ${BLOCKS} direct 4 KiB writes lose nothing`, async () => {
    const disk = join(d.dataDir, 'w.vhdx');
    for (const args of [['New-VHD', '-Path', disk, '-SizeBytes', '1GB', '-Dynamic', '-BlockSizeBytes', '1MB'], ['New-VM', 'w1', '-MemoryStartupBytes', '256MB'],
      ['Add-VMHardDiskDrive', '-VMName', 'w1', '-Path', disk, '-ControllerType', 'SCSI'], ['Start-VM', 'w1']]) {
      const r = await d.cli(...args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    }
    await waitFor('heartbeat', 60_000, async () => (await vm()).Heartbeat === 'OK');
    const pid = (await vm()).ProcessId;
    const dev = await guest('ls /sys/bus/scsi/devices/0:0:0:0/block/');
    // Each 1 MiB VHDX block is a new allocation every 256 writes: the crash lands in both kinds.
    // The agent kills what a finished script leaves in its process group: the writer detaches
    // with setsid first and says so before the script returns.
    await guest(`setsid sh -c 'touch /tmp/detached; i=0; while [ $i -lt ${BLOCKS} ]; do yes $(printf %08d $i) | head -c 4096 | dd of=/dev/${dev} bs=4096 seek=$i count=1 iflag=fullblock oflag=direct 2>/tmp/dd.err && echo $i >> /tmp/acked || echo "fail $i" >> /tmp/failed; i=$((i+1)); done; touch /tmp/done' >/dev/null 2>&1 & while [ ! -f /tmp/detached ]; do sleep 0.1; done; echo started`);
    // Each kill lands at a random point of its own slice of the run, found from the guest's
    // acknowledged count, not after a fixed 1.5-3.5 s: on a faster machine the writes could
    // all be done before the last timed kill, which then crashed an idle daemon and tested
    // nothing. The slices end at KILLS/(KILLS+1) of the run, so writes go on after the last.
    const ackedNow = async (): Promise<number> => Number(await guest('wc -l < /tmp/acked 2>/dev/null || echo 0'));
    for (let k = 0; k < KILLS; k++) {
      const target = Math.floor((BLOCKS * (k + 0.25 + Math.random() * 0.5)) / (KILLS + 1));
      const acked = await waitFor(`${target} acknowledged writes`, 120_000, async () => { const n = await ackedNow(); return n >= target ? n : false; });
      assert.ok(acked < BLOCKS, `kill ${k + 1} lands while the guest still writes (${acked} of ${BLOCKS} done)`);
      await d.kill();
      await sleep(500);
      await d.launch();
      console.log(`kill ${k + 1}: ${acked} writes acknowledged before it`);
    }
    await waitFor('all writes done', 300_000, async () => (await guest('test -f /tmp/done && echo yes || echo no')) === 'yes');
    assert.equal((await vm()).ProcessId, pid, 'the same QEMU kept running');
    assert.equal(await guest('cat /tmp/failed 2>/dev/null | wc -l'), '0', 'no write failed in the guest');
    assert.equal(await guest('dmesg | grep -ci "i/o error" || true'), '0', 'no I/O errors in the guest kernel log');
    assert.equal(await guest('wc -l < /tmp/acked'), String(BLOCKS));
    const t = await d.cli('Stop-VM', 'w1', '-TurnOff');
    assert.equal(t.code, 0, t.stderr);
    const check = await d.cli('Test-VHD', '-Path', disk);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    const vd = await openDiskFile(disk, { readOnly: true });
    try {
      const buf = Buffer.alloc(4096);
      for (let i = 0; i < BLOCKS; i++) {
        await vd.read(buf, i * 4096);
        if (!buf.equals(expected(i))) assert.fail(`block ${i} does not hold what the guest wrote`);
      }
    } finally {
      await vd.close();
    }
  });
});
