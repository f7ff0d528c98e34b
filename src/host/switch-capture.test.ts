// Start-VMSwitchCapture's path rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isVmhostError, type ErrorCode } from '../common/index.ts';
import { checkCapturePath } from './switch-capture.ts';

test('capture path: absolute, in an existing directory, an existing file only with -Force', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vmhost-cap-'));
  try {
    const rejects = (p: string, force: boolean, code: ErrorCode, re: RegExp) =>
      assert.rejects(checkCapturePath(p, force), (e) => isVmhostError(e, code) && re.test(e.message));
    await rejects('x.pcap', false, 'INVALID_ARGUMENT', /^Path: 'x\.pcap' is not an absolute path$/);
    await rejects(join(dir, 'no', 'x.pcap'), false, 'INVALID_ARGUMENT', /directory .* does not exist/);
    await rejects(dir, true, 'INVALID_ARGUMENT', /is a directory/);
    await writeFile(join(dir, 'old.pcap'), 'x');
    await rejects(join(dir, 'old.pcap'), false, 'ALREADY_EXISTS', /use -Force/);
    await checkCapturePath(join(dir, 'old.pcap'), true);
    await checkCapturePath(join(dir, 'new.pcap'), false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
