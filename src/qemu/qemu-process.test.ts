// Real QEMU (TCG, generation 1, no disk: SeaBIOS idles at "no bootable device").
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isVmhostError } from '../common/index.ts';
import { buildQemuArgv } from './command-line.ts';
import { QemuProcess, isPidAlive, isQemuOfVm } from './qemu-process.ts';
import { checkStateFile, restoreIncomingUri, saveStateToFile, waitForIncoming } from './save-state.ts';
import { QemuTestBed } from './test-support.ts';
import type { QmpEvent } from './qmp-schema.ts';

const bed = new QemuTestBed();
after(() => bed.cleanup());

test('start, QMP query-status/stop/cont/system_reset with events, QMP errors mapped, quit', async () => {
  const spec = bed.spec({}, 'basic');
  const t0 = Date.now();
  const proc = await bed.start(spec);
  const startMs = Date.now() - t0;
  assert.ok(isPidAlive(proc.pid));
  assert.ok(isQemuOfVm(proc.pid, spec.uuid));
  assert.equal(readFileSync(spec.paths.pidFile, 'utf8').trim(), String(proc.pid));
  for (const s of [spec.paths.serialSocket, spec.paths.vncSocket, spec.paths.agentSocket]) assert.ok(existsSync(s), s);
  const events: QmpEvent[] = [];
  proc.qmp.on('event', (e) => events.push(e));

  assert.equal((await proc.qmp.execute('query-status')).status, 'running');
  const n = 50, q0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await proc.qmp.execute('query-status');
  const qmpLatencyUs = Number(process.hrtime.bigint() - q0) / 1000 / n;

  const stopped = proc.qmp.waitForEvent('STOP', { timeoutMs: 5000 });
  await proc.qmp.execute('stop');
  await stopped;
  assert.equal((await proc.qmp.execute('query-status')).status, 'paused');
  const resumed = proc.qmp.waitForEvent('RESUME', { timeoutMs: 5000 });
  await proc.qmp.execute('cont');
  await resumed;
  const reset = proc.qmp.waitForEvent('RESET', { timeoutMs: 5000 });
  await proc.qmp.execute('system_reset');
  assert.equal((await reset).data.reason, 'host-qmp-system-reset');
  // Only what the host did: a guest with nothing to boot may reset itself again right after (guest: true).
  assert.deepEqual(events.filter((e) => e.event !== 'RESET' || (e.data as { guest?: boolean } | undefined)?.guest !== true).map((e) => e.event), ['STOP', 'RESUME', 'RESET']);

  const cpus = await proc.qmp.execute('query-cpus-fast');
  assert.equal(cpus.length, 1);
  assert.equal((await proc.qmp.execute('query-kvm')).enabled, false);
  // The machine's RAM as QEMU sees it: the startup memory plus the TCG pad (command-line.ts TCG_RAM_PAD, which
  // QEMU rounds up to 8 KiB); memory.ts reports the configured size to everyone above.
  const ram = (await proc.qmp.execute('query-balloon')).actual;
  assert.ok(ram > spec.memoryStartupBytes && ram - spec.memoryStartupBytes <= 8192, `balloon reports ${ram}`);
  assert.equal((await proc.qmp.execute('query-vnc')).enabled, true);
  await proc.qmp.execute('inject-nmi');
  const shot = join(bed.dir, 'basic.ppm');
  await proc.qmp.execute('screendump', { filename: shot });
  assert.ok(statSync(shot).size > 1000);
  assert.match(await proc.qmp.execute('human-monitor-command', { 'command-line': 'info name' }), /test-basic/);

  await assert.rejects(proc.qmp.execute('device_del', { id: 'no-such-device' }),
    (e: unknown) => isVmhostError(e, 'QMP_ERROR') && e.context.qmpClass === 'DeviceNotFound');
  await assert.rejects(proc.qmp.executeRaw('no-such-command'),
    (e: unknown) => isVmhostError(e, 'QMP_ERROR') && e.context.qmpClass === 'CommandNotFound');

  const shutdown = proc.qmp.waitForEvent('SHUTDOWN', { timeoutMs: 5000 });
  const exit = await proc.quit();
  assert.equal((await shutdown).data.reason, 'host-qmp-quit');
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.equal(proc.isAlive(), false);
  console.log(`# timing: start→QMP ready ${startMs} ms; QMP query-status round trip ${qmpLatencyUs.toFixed(0)} µs`);
});

test('a second start of a running VM is refused and leaves the first alone', async () => {
  const spec = bed.spec({}, 'twice');
  const first = await bed.start(spec);
  await assert.rejects(bed.start(spec), (e: unknown) => isVmhostError(e, 'QEMU_START_FAILED') && /already running/.test(e.message));
  assert.equal((await first.qmp.execute('query-status')).status, 'running');
  await first.quit();
});

test('start failure reports QEMU\'s own message', async () => {
  const spec = bed.spec({}, 'bad');
  await assert.rejects(bed.start(spec, { extraArgs: ['-device', 'no-such-device-model'] }),
    (e: unknown) => isVmhostError(e, 'QEMU_START_FAILED') && /no-such-device-model/.test(e.message));
});

test('attach to a running QEMU by pid after forgetting it; exit detected on SIGKILL', async () => {
  const spec = bed.spec({}, 'attach');
  const first = await bed.start(spec);
  const pid = first.pid;
  await first.detach(); // the "daemon" forgets it
  assert.ok(isPidAlive(pid), 'QEMU survives its manager letting go');

  await assert.rejects(QemuProcess.attach({ pid, qmpSocket: spec.paths.qmpSocket, uuid: '00000000-0000-4000-8000-000000000000' }),
    (e: unknown) => isVmhostError(e, 'QEMU_ATTACH_FAILED'));
  await assert.rejects(QemuProcess.attach({ pid: 999999, qmpSocket: spec.paths.qmpSocket, uuid: spec.uuid }),
    (e: unknown) => isVmhostError(e, 'QEMU_ATTACH_FAILED') && /not running/.test(e.message));
  await assert.rejects(QemuProcess.attach({ pid: process.pid, qmpSocket: spec.paths.qmpSocket, uuid: spec.uuid }),
    (e: unknown) => isVmhostError(e, 'QEMU_ATTACH_FAILED') && /not the QEMU/.test(e.message));

  const again = await QemuProcess.attach({ pid, qmpSocket: spec.paths.qmpSocket, uuid: spec.uuid });
  bed.track(again);
  assert.equal((await again.qmp.execute('query-status')).status, 'running');
  const exitEvent = new Promise((r) => again.once('exit', r));
  const t0 = Date.now();
  process.kill(pid, 'SIGKILL'); // not through `again`: as if the OOM killer did it
  await again.exited;
  await exitEvent;
  const detectMs = Date.now() - t0;
  assert.equal(again.isAlive(), false);
  assert.equal(again.qmp.isClosed, true);
  assert.ok(detectMs < 2000, `exit detected in ${detectMs} ms`);
  console.log(`# timing: SIGKILL → exit detected ${detectMs} ms`);
});

test('save to file and restore from file (a daemon-side socket and fd 3: no exec: under the sandbox): running after restore', async () => {
  const spec = bed.spec({ memoryStartupBytes: 128 * 1024 * 1024 }, 'save');
  const src = await bed.start(spec);
  await new Promise((r) => setTimeout(r, 300)); // let SeaBIOS touch some memory
  const file = join(bed.dir, 'save', 'state.bin');
  const saved = await saveStateToFile(src.qmp, file);
  assert.equal((await src.qmp.execute('query-status')).status, 'postmigrate');
  assert.ok(saved.bytes > 100_000, `state file has ${saved.bytes} bytes`);
  assert.ok(!existsSync(`${file}.partial`));
  await src.quit();

  const t0 = Date.now();
  await checkStateFile(file);
  const dst = await bed.start(spec, { incoming: restoreIncomingUri(file) });
  const status = await waitForIncoming(dst.qmp, { timeoutMs: 30000, resume: true });
  const restoreMs = Date.now() - t0;
  assert.equal(status, 'running');
  assert.equal((await dst.qmp.execute('query-status')).status, 'running');
  await dst.quit();

  // gzip-compressed variant, restored paused (as saved) then resumed by hand
  const gz = join(bed.dir, 'save', 'state.gz');
  const src2 = await bed.start(spec);
  const saved2 = await saveStateToFile(src2.qmp, gz, { compression: 'gzip' });
  await src2.quit();
  await checkStateFile(gz, 'gzip');
  const dst2 = await bed.start(spec, { incoming: restoreIncomingUri(gz, 'gzip') });
  assert.equal(await waitForIncoming(dst2.qmp, { timeoutMs: 30000 }), 'paused');
  await dst2.qmp.execute('cont');
  assert.equal((await dst2.qmp.execute('query-status')).status, 'running');
  await dst2.quit();
  console.log(`# timing: save 128 MiB VM ${saved.durationMs} ms (${saved.bytes} bytes); restore start→running ${restoreMs} ms; gzip save ${saved2.durationMs} ms (${saved2.bytes} bytes)`);
});

test('restore: a missing or corrupt state file is refused before start, and QEMU rejecting one is an error', async () => {
  const missing = join(bed.dir, 'nope.bin');
  await assert.rejects(checkStateFile(missing), (e: unknown) => isVmhostError(e, 'QEMU_STATE_FAILED') && /cannot read/.test(e.message));
  const garbage = join(bed.dir, 'garbage.bin');
  writeFileSync(garbage, Buffer.alloc(70000, 7));
  await assert.rejects(checkStateFile(garbage), (e: unknown) => isVmhostError(e, 'QEMU_STATE_FAILED') && /not a QEMU state file/.test(e.message));
  await assert.rejects(checkStateFile(garbage, 'gzip'), (e: unknown) => isVmhostError(e, 'QEMU_STATE_FAILED'));
  // A stream with the right magic but nothing after it: QEMU exits ("Configuration section missing").
  const truncated = join(bed.dir, 'truncated.bin');
  writeFileSync(truncated, Buffer.from('QEVM\0\0\0\x03', 'latin1'));
  await checkStateFile(truncated);
  const spec = bed.spec({}, 'badrestore');
  try {
    const proc = await bed.start(spec, { incoming: restoreIncomingUri(truncated) });
    await assert.rejects(waitForIncoming(proc.qmp, { timeoutMs: 10000 }), (e: unknown) => isVmhostError(e, 'QEMU_STATE_FAILED'));
  } catch (e) {
    assert.ok(isVmhostError(e, 'QEMU_START_FAILED'), String(e)); // QEMU may die before its QMP socket is up
  }
});

test('QEMU survives a SIGKILLed daemon; a new daemon re-attaches and sees the exit of a non-child', async () => {
  const spec = bed.spec({}, 'crash');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(spec.paths.qmpSocket, '..'), { recursive: true });
  const moduleUrl = new URL('./qemu-process.ts', import.meta.url).href;
  const daemon = join(bed.dir, 'daemon.mts');
  writeFileSync(daemon, [
    `import { QemuProcess } from ${JSON.stringify(moduleUrl)};`,
    `const p = await QemuProcess.start(${JSON.stringify({
      argv: buildQemuArgv(spec), qmpSocket: spec.paths.qmpSocket, uuid: spec.uuid, logFile: join(bed.dir, 'crash.log'),
    })});`,
    'console.log(p.pid);',
    'setInterval(() => {}, 1000);',
  ].join('\n'));
  const child = spawn(process.execPath, ['--import', 'tsx', daemon], { stdio: ['ignore', 'pipe', 'inherit'], cwd: fileURLToPath(new URL('../..', import.meta.url)) });
  const pid = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => { out += d; const m = /^(\d+)\n/.exec(out); if (m) resolve(Number(m[1])); });
    child.once('exit', (code) => reject(new Error(`daemon exited ${code}`)));
  });
  try {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    await sleep(200);
    assert.ok(isPidAlive(pid), 'QEMU outlives the daemon that started it');
    const proc = await QemuProcess.attach({ pid, qmpSocket: spec.paths.qmpSocket, uuid: spec.uuid });
    bed.track(proc);
    assert.equal((await proc.qmp.execute('query-status')).status, 'running');
    const t0 = Date.now();
    process.kill(pid, 'SIGKILL');
    assert.deepEqual(await proc.exited, { code: null, signal: null }, 'not our child: cause unknowable');
    console.log(`# timing: non-child QEMU SIGKILL → exit detected ${Date.now() - t0} ms`);
  } finally {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
});
