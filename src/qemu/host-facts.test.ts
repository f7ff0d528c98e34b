import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isVmhostError } from '../common/index.ts';
import { ensureVarsFile, findOvmf, findQemuBinary, qemuVersion } from './host-facts.ts';

test('qemu binary and version', async () => {
  const bin = findQemuBinary();
  assert.match(bin, /qemu-system-x86_64$/);
  const v = await qemuVersion(bin);
  assert.ok(v.major >= 7, v.text);
  assert.equal(await qemuVersion(bin), v, 'cached');
});

test('OVMF discovery: plain and secure-boot (.ms) 4M builds; missing dir is QEMU_HOST_MISSING', () => {
  const plain = findOvmf(false);
  assert.match(plain.codePath, /OVMF_CODE_4M\.fd$/);
  assert.match(plain.varsTemplatePath, /OVMF_VARS_4M\.fd$/);
  const sb = findOvmf(true);
  assert.match(sb.codePath, /OVMF_CODE_4M\.ms\.fd$/);
  assert.match(sb.varsTemplatePath, /OVMF_VARS_4M\.ms\.fd$/);
  assert.throws(() => findOvmf(false, ['/nonexistent']), (e: unknown) => isVmhostError(e, 'QEMU_HOST_MISSING'));
});

test('ensureVarsFile copies the template once and never overwrites a VM\'s variables', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-vars-'));
  try {
    const fw = findOvmf(false);
    const vars = join(dir, 'vm_VARS.fd');
    await ensureVarsFile(vars, fw);
    assert.equal(statSync(vars).size, statSync(fw.varsTemplatePath).size);
    writeFileSync(vars, 'changed by the guest');
    await ensureVarsFile(vars, fw);
    assert.equal(readFileSync(vars, 'utf8'), 'changed by the guest');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
