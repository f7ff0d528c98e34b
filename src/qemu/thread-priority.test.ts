// Which thread the setup raises, picked from /proc's names; a real thread raised and restored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { getPriority } from 'node:os';
import { readFileSync } from 'node:fs';
import { MIGRATION_THREAD, parseAutogroupNice, raiseThread, threadsNamed, threadsOf } from './thread-priority.ts';

test("QEMU's migration thread picked by its debug-threads name, not its neighbours'", () => {
  const threads = [
    { tid: 10, comm: 'qemu-system-x86' }, { tid: 11, comm: 'CPU 0/TCG' }, { tid: 12, comm: 'IO mon_iothread' },
    { tid: 13, comm: 'live_migration' }, { tid: 14, comm: 'multifdsend_0' }, { tid: 15, comm: 'multifdsend_1' },
  ];
  assert.deepEqual(threadsNamed(threads, MIGRATION_THREAD), [13]);
  assert.deepEqual(threadsNamed(threads, 'live_migratio'), []);
  assert.deepEqual(threadsNamed([], MIGRATION_THREAD), []);
});

test("an autogroup's nice from /proc/PID/autogroup", () => {
  assert.equal(parseAutogroupNice('/autogroup-42 nice 0\n'), 0);
  assert.equal(parseAutogroupNice('/autogroup-7 nice -20\n'), -20);
  assert.equal(parseAutogroupNice(''), undefined);
});

const autogroupNice = (pid: number): number | undefined => { try { return parseAutogroupNice(readFileSync(`/proc/${pid}/autogroup`, 'utf8')); } catch { return undefined; } };

test('a real thread raised (or refused without CAP_SYS_NICE) and restored; a missing name raises nothing', async () => {
  const child = spawn('sleep', ['30'], { detached: true }); // a session, hence an autogroup, of its own (as QEMU)
  try {
    await new Promise((r) => child.once('spawn', r));
    assert.deepEqual(threadsOf(child.pid!).map((t) => t.comm), ['sleep']);
    assert.equal(raiseThread(child.pid!, 'no-such-thread', -5), undefined);
    const r = raiseThread(child.pid!, 'sleep', -5)!;
    if (process.getuid?.() === 0) {
      assert.ok('restore' in r);
      assert.equal(getPriority(child.pid!), -5);
      const group = autogroupNice(child.pid!);
      if (group !== undefined) assert.equal(group, -5, 'its autogroup raised with it');
      r.restore();
      r.restore();
      assert.equal(getPriority(child.pid!), 0);
      if (group !== undefined) assert.equal(autogroupNice(child.pid!), 0);
    } else {
      assert.ok('refused' in r);
    }
  } finally {
    child.kill();
  }
  assert.deepEqual(threadsOf(2 ** 22 + 1), []);
});
