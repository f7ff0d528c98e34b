// The systemd packaging (issue 14, drain on shutdown): scripts/install-service.sh installs
// packaging/systemd/vmhostd.service with this checkout's path, /var/lib/vmhost (0700) and
// /etc/default/vmhostd, idempotently — a second run changes nothing and keeps the admin's
// options — and systemd itself accepts the unit (`systemd-analyze verify`). Run under --root, so
// the machine's /etc is untouched; the real install (systemctl enable/start) needs a systemd host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './support/daemon.ts';

const run = promisify(execFile);
const SCRIPT = join(ROOT, 'scripts/install-service.sh');
const ANALYZE = '/usr/bin/systemd-analyze';

test('install-service.sh installs the unit, the data dir and the defaults, idempotently; systemd-analyze verifies the unit', async () => {
  const root = await mkdtemp(join(tmpdir(), 'vmhost-unit-'));
  try {
    await run(SCRIPT, ['--root', root]);
    const unitPath = join(root, 'etc/systemd/system/vmhostd.service');
    const unit = await readFile(unitPath, 'utf8');
    assert.ok(!unit.includes('@VMHOST_ROOT@'), 'the checkout\'s path is filled in');
    assert.match(unit, new RegExp(`^ExecStart=${ROOT}/bin/vmhostd --data-dir /var/lib/vmhost \\$VMHOSTD_ARGS$`, 'm'));
    assert.match(unit, /^KillMode=process$/m, 'only the daemon is signalled: its QEMUs outlive a restart');
    const stopSec = Number(/^TimeoutStopSec=(\d+)$/m.exec(unit)?.[1]);
    assert.ok(stopSec > 120, `systemd waits (${stopSec} s) longer than the default drain timeout (120 s)`);
    assert.equal((await stat(join(root, 'var/lib/vmhost'))).mode & 0o777, 0o700);
    // A cluster node's etcd member rejoins by itself after a clean leave removed it.
    const dropIn = await readFile(join(root, 'etc/systemd/system/etcd.service.d/vmhost-rejoin.conf'), 'utf8');
    assert.match(dropIn, new RegExp(`^ExecStartPre=${ROOT}/bin/vmhost-etcd-rejoin /run/vmhost/etcd-rejoin.env$`, 'm'));
    assert.match(dropIn, /^EnvironmentFile=-\/run\/vmhost\/etcd-rejoin.env$/m);
    assert.ok(((await stat(join(ROOT, 'bin/vmhost-etcd-rejoin'))).mode & 0o111) !== 0, 'bin/vmhost-etcd-rejoin is executable');

    // The admin's options survive a second run, and the unit is left as it was.
    const defaults = join(root, 'etc/default/vmhostd');
    await writeFile(defaults, 'VMHOSTD_ARGS="--listen 127.0.0.1:9999"\n');
    const again = await run(SCRIPT, ['--root', root]);
    assert.match(again.stdout, /is up to date/);
    assert.equal(await readFile(defaults, 'utf8'), 'VMHOSTD_ARGS="--listen 127.0.0.1:9999"\n');
    assert.equal(await readFile(unitPath, 'utf8'), unit);

    const haveAnalyze = await access(ANALYZE).then(() => true, () => false);
    assert.ok(haveAnalyze || process.env.CI !== 'true', 'systemd-analyze (systemd) is required under CI');
    if (haveAnalyze) {
      const v = await run(ANALYZE, ['verify', unitPath]).catch((e: { stderr: string; code: number }) => ({ stderr: e.stderr, stdout: '', code: e.code }));
      assert.equal('code' in v ? v.code : 0, 0, `systemd-analyze verify: ${v.stderr}`);
      // verify prints problems of the unit itself as "vmhostd.service:LINE: …" (other units' noise is not ours).
      assert.doesNotMatch(v.stderr, /vmhostd\.service:\d+:/, v.stderr);
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
