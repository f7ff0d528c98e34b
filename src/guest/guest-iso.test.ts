// The guest integration ISO: its files (read back with xorriso, Rock Ridge modes kept),
// a static agent, and install.sh installing into an offline root exactly as the Debian
// guest disk's build does. No boot: the Debian guest test boots an agent installed by
// this same install.sh. Needs xorriso and gcc; skipped without them unless CI=true.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureGuestIso } from './index.ts';
import { skipUnless } from './image-test-support.ts';

const skip = skipUnless(['xorriso', 'gcc']);

test('guest integration ISO', { skip, timeout: 600_000 }, async (t) => {
  const { iso, manifest } = await ensureGuestIso();
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-iso-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const m = JSON.parse(readFileSync(manifest, 'utf8')) as { volumeId: string; files: string[] };

  const label = spawnSync('xorriso', ['-indev', iso, '-pvd_info'], { encoding: 'utf8' });
  assert.match(label.stdout + label.stderr, /Volume Id\s*:\s*VMHOST_GUEST/);
  const x = spawnSync('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/', join(dir, 'iso')], { encoding: 'utf8' });
  assert.equal(x.status, 0, x.stderr);
  for (const f of m.files) assert.ok(statSync(join(dir, 'iso', f)).isFile(), f);
  assert.ok((statSync(join(dir, 'iso', 'install.sh')).mode & 0o111) !== 0, 'install.sh executable');

  // Static: an ELF with no program interpreter, so it runs whatever the guest's libc.
  const agent = readFileSync(join(dir, 'iso', 'vmhost-agent'));
  assert.deepEqual([...agent.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]);
  const phoff = Number(agent.readBigUInt64LE(0x20)), phentsize = agent.readUInt16LE(0x36), phnum = agent.readUInt16LE(0x38);
  const types = Array.from({ length: phnum }, (_, i) => agent.readUInt32LE(phoff + i * phentsize));
  assert.equal(types.includes(3), false, 'no PT_INTERP (dynamic loader)');

  const root = join(dir, 'root');
  const r = spawnSync('sh', [join(dir, 'iso', 'install.sh')], { encoding: 'utf8', env: { ...process.env, VMHOST_INSTALL_ROOT: root } });
  // install.sh refuses to run as a normal user; an offline root is still root's job.
  if (process.getuid?.() !== 0) { assert.notEqual(r.status, 0); return; }
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readFileSync(join(root, 'usr/sbin/vmhost-agent')), agent);
  assert.match(readFileSync(join(root, 'etc/systemd/system/vmhost-agent.service'), 'utf8'), /ExecStart=\/usr\/sbin\/vmhost-agent/);
  assert.equal(readlinkSync(join(root, 'etc/systemd/system/sysinit.target.wants/vmhost-agent.service')), '../vmhost-agent.service');
});
