// Two local QEMUs (generation 1, TCG, SeaBIOS idle): plain (auto-converge with its ceiling) and multifd+zstd live migration over
// a unix socket; the destination runs afterwards, the source is left in 'postmigrate'.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { isVmhostError } from '../common/index.ts';
import { runtimePathsIn } from './command-line.ts';
import { migrateLive, startIncoming, type MigrationTuning } from './live-migration.ts';
import { QemuTestBed } from './test-support.ts';
import { MIGRATION_THREAD, SETUP_NICE, parseAutogroupNice } from './thread-priority.ts';

const bed = new QemuTestBed();
after(() => bed.cleanup());

const cases: [string, MigrationTuning][] = [
  ['plain, auto-converge capped', { autoConverge: true, maxCpuThrottle: 90 }],
  ['multifd zstd', { multifd: { channels: 2, compression: 'zstd' } }],
];

for (const [label, tuning] of cases) {
  test(`live migration over a unix socket: ${label}`, async () => {
    const sub = label.replace(/\W+/g, '-');
    const src = bed.spec({ memoryStartupBytes: 128 << 20 }, `${sub}-src`);
    // Same hardware and identity on the destination; its own sockets.
    const dstSpec = { ...src, paths: runtimePathsIn(join(bed.dir, `${sub}-dst`)) };
    const s = await bed.start(src);
    const d = await bed.start(dstSpec, { incoming: 'defer' });
    const uri = `unix:${join(bed.dir, `${sub}.mig`)}`;
    await startIncoming(d.qmp, uri, tuning);
    const r = await migrateLive(s.qmp, uri, tuning, { timeoutMs: 60000 });
    assert.equal((await s.qmp.execute('query-status')).status, 'postmigrate');
    // The cap reached QEMU (Move-VM's options use it: a throttled guest sleeps at most 90 ms at a time).
    if (tuning.maxCpuThrottle !== undefined) assert.equal((await s.qmp.executeRaw('query-migrate-parameters') as { 'max-cpu-throttle': number })['max-cpu-throttle'], tuning.maxCpuThrottle);
    // Polled up to a deadline (not 50 rounds of 50 ms): the destination's resume after the
    // switch-over takes longer under TCG on a loaded host.
    for (const end = Date.now() + 15_000; Date.now() < end && (await d.qmp.execute('query-status')).status !== 'running';) await new Promise((x) => setTimeout(x, 50));
    assert.equal((await d.qmp.execute('query-status')).status, 'running');
    // The longest query-migrate answer (QEMU's lock held; no bound asserted: it is load-sensitive), from a pre-copy poll, not the completion's.
    assert.ok(r.longestAnswer.ms >= 0 && r.longestAnswer.status !== 'completed' && r.longestAnswer.at > 0, JSON.stringify(r.longestAnswer));
    console.log(`# timing: live migration (${label}) 128 MiB idle: total ${r.totalTimeMs} ms, downtime ${r.downtimeMs} ms, ${r.transferredBytes} bytes, QEMU's lock held up to ${r.longestAnswer.ms} ms in ${r.longestAnswer.status}`);
    await s.quit();
    await d.quit();
  });
}

test('live migration to nowhere fails with QEMU_STATE_FAILED and the source keeps running', async () => {
  const s = await bed.start(bed.spec({}, 'nowhere'));
  await assert.rejects(migrateLive(s.qmp, `unix:${join(bed.dir, 'no-listener.mig')}`, {}, { timeoutMs: 10000 }),
    (e: unknown) => isVmhostError(e, 'QEMU_STATE_FAILED') || isVmhostError(e, 'QMP_ERROR'));
  assert.equal((await s.qmp.execute('query-status')).status, 'running');
  await s.quit();
});

test('a failed and a cancelled multifd migration leave the source able to migrate again (no duplicate yank instance)', async () => {
  const tuning: MigrationTuning = { multifd: { channels: 2, compression: 'zstd' } };
  const src = bed.spec({ memoryStartupBytes: 128 << 20 }, 'retry-src');
  const s = await bed.start(src);
  // A listener that drops every connection: the migration fails, then is retried at once.
  const dropper = createServer((c) => c.destroy());
  const dropped = join(bed.dir, 'dropper.mig');
  await new Promise<void>((ok) => dropper.listen(dropped, ok));
  await assert.rejects(migrateLive(s.qmp, `unix:${dropped}`, tuning, { timeoutMs: 10000 }), (e: unknown) => isVmhostError(e, 'QEMU_STATE_FAILED'));
  dropper.close();
  // A listener that takes the stream and never reads: the migration hangs until cancelled.
  const held: Socket[] = [];
  const sink = createServer((c) => { held.push(c); });
  const stuck = join(bed.dir, 'sink.mig');
  await new Promise<void>((ok) => sink.listen(stuck, ok));
  const cancel = new AbortController();
  const cancelled = migrateLive(s.qmp, `unix:${stuck}`, tuning, { timeoutMs: 60000, signal: cancel.signal });
  setImmediate(() => cancel.abort());
  await assert.rejects(cancelled, (e: unknown) => isVmhostError(e, 'JOB_CANCELLED'));
  sink.close();
  for (const c of held) c.destroy();
  assert.equal((await s.qmp.execute('query-status')).status, 'running');
  const d = await bed.start({ ...src, paths: runtimePathsIn(join(bed.dir, 'retry-dst')) }, { incoming: 'defer' });
  const uri = `unix:${join(bed.dir, 'retry.mig')}`;
  await startIncoming(d.qmp, uri, tuning);
  await migrateLive(s.qmp, uri, tuning, { timeoutMs: 60000 });
  assert.equal((await s.qmp.execute('query-status')).status, 'postmigrate');
  await s.quit();
  await d.quit();
});

/** A thread's name and nice value as /proc shows them (stat's field 19). */
const threadInProc = (pid: number, tid: number) => ({
  comm: readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim(),
  nice: Number(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[16]),
  // QEMU's session group, raised with the thread where the kernel has autogroups (thread-priority.ts).
  group: (() => { try { return parseAutogroupNice(readFileSync(`/proc/${pid}/autogroup`, 'utf8')); } catch { return undefined; } })(),
});

test('the migration thread runs its setup at nice -20 and goes back to its own priority once QEMU answers past the setup (read from /proc)', async () => {
  const s = await bed.start(bed.spec({ memoryStartupBytes: 128 << 20 }, 'raise-src'));
  const pid = s.pid;
  // A listener that takes the stream and never reads: past the setup the migration waits in 'active' until cancelled.
  const held: Socket[] = [];
  const sink = createServer((c) => { held.push(c); });
  const path = join(bed.dir, 'raise.mig');
  await new Promise<void>((ok) => sink.listen(path, ok));
  const seen: { setup?: ReturnType<typeof threadInProc>; active?: ReturnType<typeof threadInProc> } = {};
  let tid: number | undefined;
  const cancel = new AbortController();
  const run = migrateLive(s.qmp, `unix:${path}`, {}, {
    timeoutMs: 60000, signal: cancel.signal, qemuPid: pid,
    onRaised: (t) => { tid = t; seen.setup = threadInProc(pid, t); },
    onProgress: (i) => {
      if (i.status !== 'active' || seen.active) return;
      if (tid !== undefined) seen.active = threadInProc(pid, tid);
      cancel.abort();
    },
  });
  await assert.rejects(run, (e: unknown) => isVmhostError(e, 'JOB_CANCELLED'));
  sink.close();
  for (const c of held) c.destroy();
  if (process.getuid?.() === 0) {
    const groups = seen.setup?.group !== undefined;
    assert.deepEqual(seen.setup, { comm: MIGRATION_THREAD, nice: SETUP_NICE, group: groups ? SETUP_NICE : undefined }, 'raised during the setup');
    assert.deepEqual(seen.active, { comm: MIGRATION_THREAD, nice: 0, group: groups ? 0 : undefined }, 'back at nice 0 once QEMU answered past the setup');
  } else {
    assert.equal(seen.setup, undefined, 'without CAP_SYS_NICE nothing is raised (the move goes on)');
  }
  assert.equal((await s.qmp.execute('query-status')).status, 'running');
  await s.quit();
});
