// QEMU runs under seccomp (issue 16 item 6): every argv ends with `-sandbox on,obsolete=deny,
// elevateprivileges=deny,spawn=deny,resourcecontrol=deny`, Debian's QEMU 7.2 accepts it (the
// kernel reports a seccomp filter on the process), and save/restore — which used `exec:cat`,
// a fork+exec that the sandbox kills QEMU for — still works, plain and gzip.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { QEMU_SANDBOX, QEMU_SANDBOX_RUNAS, buildQemuArgv } from './command-line.ts';
import { restoreIncomingUri, saveStateToFile, waitForIncoming } from './save-state.ts';
import { QemuTestBed } from './test-support.ts';

const bed = new QemuTestBed();
after(() => bed.cleanup());

test('argv: -sandbox with every deny option, once, at the end', () => {
  const a = buildQemuArgv(bed.spec());
  assert.deepEqual(a.slice(-2), ['-sandbox', 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny']);
  assert.equal(a.filter((x) => x === '-sandbox').length, 1);
  assert.equal(QEMU_SANDBOX, a.at(-1));
});

test('argv with runAs: -runas <user> before the sandbox, which allows the set*id calls -runas makes itself; never root', () => {
  const a = buildQemuArgv(bed.spec(), { runAs: 'vmhost-qemu' });
  assert.deepEqual(a.slice(-4), ['-runas', 'vmhost-qemu', '-sandbox', QEMU_SANDBOX_RUNAS]);
  assert.equal(QEMU_SANDBOX_RUNAS, 'on,obsolete=deny,elevateprivileges=allow,spawn=deny,resourcecontrol=deny');
  assert.equal(buildQemuArgv(bed.spec()).includes('-runas'), false, 'no runAs: QEMU keeps the daemon\'s user');
  for (const bad of ['root', '', 'a,b', '-x', 'Bad User']) {
    assert.throws(() => buildQemuArgv(bed.spec(), { runAs: bad }), { code: 'QEMU_SPEC_INVALID' }, bad);
  }
});

test('a started QEMU has a seccomp filter; it saves to a file and restores from it (plain and gzip) under the sandbox', { timeout: 120_000 }, async () => {
  const spec = bed.spec({}, 'sbx');
  const src = await bed.start(spec);
  const status = await readFile(`/proc/${src.pid}/status`, 'utf8');
  assert.match(status, /^Seccomp:\s+2$/m, 'seccomp filter mode');
  assert.match(status, /^NoNewPrivs:\s+1$/m);
  for (const compression of ['none', 'gzip'] as const) {
    const proc = compression === 'none' ? src : await bed.start(spec);
    await proc.qmp.execute('cont');
    const file = join(bed.dir, `state-${compression}.bin`);
    const saved = await saveStateToFile(proc.qmp, file, { compression });
    assert.ok(saved.bytes > 1000 && (await stat(file)).size === saved.bytes);
    assert.equal((await stat(file)).mode & 0o777, 0o600, 'the guest\'s RAM is private');
    assert.ok(proc.isAlive(), 'QEMU survived the save (no exec: under spawn=deny)');
    await proc.quit();
    const dst = await bed.start(spec, { incoming: restoreIncomingUri(file, compression) });
    assert.match(await readFile(`/proc/${dst.pid}/status`, 'utf8'), /^Seccomp:\s+2$/m);
    assert.equal(await waitForIncoming(dst.qmp, { resume: true, timeoutMs: 60_000 }), 'running');
    await dst.quit();
  }
});
