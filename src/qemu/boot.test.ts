// Boot tests with real firmware and the real test guest, all under TCG through the driver's
// own command line (buildQemuArgv) and process manager:
// - generation 2 firmware smoke: q35 + OVMF with no disk reaches the UEFI boot manager
//   (serial log) and draws a non-uniform screen (QMP screendump);
// - the test guest (scripts/build-guest.sh, kernel + initrd) boots on generation 1 (SeaBIOS)
//   and generation 2 (OVMF, direct kernel boot) and prints its boot marker on the serial log;
//   a console attached to the serial socket runs commands; a guest power-off ends QEMU.
// src/guest is a same-layer module, so the image is taken from the build script directly.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve, dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ensureVarsFile, findOvmf } from './host-facts.ts';
import { checkStateFile, restoreIncomingUri, saveStateToFile, waitForIncoming } from './save-state.ts';
import { QemuTestBed, waitForText } from './test-support.ts';
import type { QemuVmSpec } from './vm-spec.ts';

const bed = new QemuTestBed();
after(() => bed.cleanup());

const GUEST_MARKER = 'vmhost-guest: up';

async function guestImage(): Promise<{ kernel: string; initrd: string }> {
  const script = resolve(dirname(fileURLToPath(import.meta.url)), '../../scripts/build-guest.sh');
  const { stdout } = await promisify(execFile)('bash', [script], { maxBuffer: 16 << 20, timeout: 15 * 60_000 });
  const dir = stdout.trim().split('\n').pop()!;
  return { kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') };
}

async function gen2Spec(sub: string, over: Partial<QemuVmSpec> = {}, secureBoot = false): Promise<QemuVmSpec> {
  const fw = findOvmf(secureBoot);
  const spec = bed.spec({ generation: 2, memoryStartupBytes: 256 << 20, ...over }, sub);
  const varsPath = join(bed.dir, `${sub}_VARS.fd`);
  await ensureVarsFile(varsPath, fw);
  return { ...spec, firmware: { codePath: fw.codePath, varsPath, secureBoot } };
}

/** PPM (P6) pixel data has more than one colour. */
function ppmIsNonUniform(file: string): boolean {
  const b = readFileSync(file);
  // header: P6\n<w> <h>\n<max>\n
  let nl = 0, pos = 0;
  while (nl < 3) { if (b[pos++] === 0x0a) nl++; }
  const px = b.subarray(pos);
  for (let i = 3; i < px.length; i += 3) {
    if (px[i] !== px[0] || px[i + 1] !== px[1] || px[i + 2] !== px[2]) return true;
  }
  return false;
}

test('generation 2 smoke: q35 + OVMF (plain and secure boot/SMM) reaches the UEFI boot manager; screen drawn', async () => {
  for (const secureBoot of [false, true]) {
    const sub = secureBoot ? 'uefi-sb' : 'uefi';
    const spec = await gen2Spec(sub, {}, secureBoot);
    const t0 = Date.now();
    const proc = await bed.start(spec);
    await waitForText(spec.paths.serialLog, 'BdsDxe', 90_000);
    const ms = Date.now() - t0;
    assert.equal((await proc.qmp.execute('query-status')).status, 'running');
    const shot = join(bed.dir, `${sub}.ppm`);
    await proc.qmp.execute('screendump', { filename: shot });
    assert.ok(ppmIsNonUniform(shot), 'firmware drew something');
    console.log(`# timing: gen 2${secureBoot ? ' secure boot' : ''} power-on → UEFI boot manager on serial ${ms} ms (TCG)`);
    await proc.quit();
  }
});

test('test guest boots on generation 1 (SeaBIOS) and 2 (OVMF), marker on the serial log', async () => {
  const img = await guestImage();
  const kernelBoot = { kernelPath: img.kernel, initrdPath: img.initrd, append: 'console=ttyS0 quiet panic=-1 vmhost.hostname=qemu-boot' };
  for (const gen of [1, 2] as const) {
    const spec = gen === 1
      ? bed.spec({ memoryStartupBytes: 256 << 20, kernelBoot }, 'guest1')
      : await gen2Spec('guest2', { kernelBoot });
    const t0 = Date.now();
    const proc = await bed.start(spec);
    await waitForText(spec.paths.serialLog, GUEST_MARKER, 120_000);
    const ms = Date.now() - t0;
    console.log(`# timing: gen ${gen} guest power-on → boot marker ${ms} ms (TCG)`);
    const powerdown = proc.qmp.waitForEvent('POWERDOWN', { timeoutMs: 5000 });
    await proc.qmp.execute('system_powerdown');
    await powerdown;

    // Attach a console to the serial socket, power off from the guest's shell: QEMU exits
    // (no -no-shutdown) after a SHUTDOWN event with reason guest-shutdown.
    const shutdown = proc.qmp.waitForEvent('SHUTDOWN', { timeoutMs: 60_000 });
    const sock = connect(spec.paths.serialSocket);
    await new Promise<void>((r, j) => { sock.once('connect', r); sock.once('error', j); });
    sock.on('error', () => {});
    sock.write('\necho console-$((6*7))\n');
    await waitForText(spec.paths.serialLog, 'console-42', 30_000);
    sock.write('poweroff -f\n');
    const ev = await shutdown;
    assert.equal(ev.data.reason, 'guest-shutdown');
    const exit = await Promise.race([proc.exited, sleep(30_000, 'still running', { ref: false })]);
    assert.deepEqual(exit, { code: 0, signal: null }, `gen ${gen}: QEMU exits on guest power-off`);
    sock.destroy();
  }
});

test('a booted generation 2 guest is saved to a file, restored, and its console answers', async () => {
  const img = await guestImage();
  const kernelBoot = { kernelPath: img.kernel, initrdPath: img.initrd, append: 'console=ttyS0 quiet panic=-1 vmhost.hostname=qemu-save' };
  const spec = await gen2Spec('saved', { kernelBoot });
  const src = await bed.start(spec);
  await waitForText(spec.paths.serialLog, GUEST_MARKER, 120_000);
  const file = join(bed.dir, 'saved.state');
  const saved = await saveStateToFile(src.qmp, file);
  await src.quit();

  const t0 = Date.now();
  await checkStateFile(file);
  const dst = await bed.start(spec, { incoming: restoreIncomingUri(file) });
  assert.equal(await waitForIncoming(dst.qmp, { timeoutMs: 60_000, resume: true }), 'running');
  const restoreMs = Date.now() - t0;
  const sock = connect(spec.paths.serialSocket);
  await new Promise<void>((r, j) => { sock.once('connect', r); sock.once('error', j); });
  sock.on('error', () => {});
  sock.write('\necho restored-$((40+2))\n');
  const answerMs = await waitForText(spec.paths.serialLog, 'restored-42', 30_000);
  sock.destroy();
  console.log(`# timing: gen 2 guest (256 MiB) save ${saved.durationMs} ms, ${saved.bytes} bytes; restore → running ${restoreMs} ms; console answered ${answerMs} ms later`);
  await dst.quit();
});

test('a state saved without the TCG RAM pad (an older vmhost, or KVM) restores in its own layout, which the padded default refuses', async () => {
  // No guest: the firmware finding nothing to boot is enough — the RAM block list is the machine's, and it saves in a moment.
  const old = bed.spec({ memoryStartupBytes: 128 << 20, ramPadBytes: 0 }, 'unpadded');
  const src = await bed.start(old);
  const file = join(bed.dir, 'unpadded.state');
  await saveStateToFile(src.qmp, file);
  await src.quit();
  assert.equal(await checkStateFile(file), 0, 'the file says: whole MiB');

  const today = bed.spec({ memoryStartupBytes: 128 << 20 }, 'unpadded');
  await assert.rejects(bed.start(today, { incoming: restoreIncomingUri(file) }), /Size mismatch: pc\.ram/, 'the padded machine does not take the unpadded state');

  const restored = await bed.start({ ...today, ramPadBytes: await checkStateFile(file) }, { incoming: restoreIncomingUri(file) });
  assert.equal(await waitForIncoming(restored.qmp, { timeoutMs: 60_000, resume: true }), 'running');
  await restored.quit();

  // And a state the padded machine saved says so.
  const padded = await bed.start(today);
  const file2 = join(bed.dir, 'padded.state');
  await saveStateToFile(padded.qmp, file2);
  await padded.quit();
  assert.ok(((await checkStateFile(file2)) ?? 0) > 0, 'a padded layout');
});
