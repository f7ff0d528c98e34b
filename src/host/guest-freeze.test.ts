// atConsistentPoint's verdicts (the real agent's freeze is exercised by test/vm-backup.test.ts
// and test/debian-backup.test.ts): the order freeze → take → thaw, and every way a point falls
// back to crash-consistent with its reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VmhostError } from '../common/index.ts';
import { AUTO_THAW_MS, atConsistentPoint } from './guest-freeze.ts';

/** An agent's freeze/thaw as the protocol answers them; `log` records the order of calls. */
function agent(o: { frozen?: string[]; freezeError?: Error; thawed?: number; thawError?: Error }, log: string[]) {
  return {
    freeze: async (autoThawMs: number) => {
      log.push(`freeze ${autoThawMs}`);
      if (o.freezeError) throw o.freezeError;
      return { timeoutMs: autoThawMs, frozen: o.frozen ?? ['/'] };
    },
    thaw: async () => {
      log.push('thaw');
      if (o.thawError) throw o.thawError;
      return { thawed: o.thawed ?? (o.frozen ?? ['/']).length };
    },
  };
}

test('a freeze that holds through the take: application-consistent, thawed right after the take', async () => {
  const log: string[] = [];
  const p = await atConsistentPoint(agent({ frozen: ['/boot', '/'] }, log), true, async () => { log.push('take'); return 7; });
  assert.deepEqual(p, { value: 7, level: 'ApplicationConsistent', frozen: ['/boot', '/'] });
  assert.deepEqual(log, [`freeze ${AUTO_THAW_MS}`, 'take', 'thaw']);
});

test('crash-consistent, with the reason: VSS off, no agent, an old agent, the agent thawed first, no thaw answer', async () => {
  const log: string[] = [];
  const take = async () => 1;
  assert.match((await atConsistentPoint(agent({}, log), false, take)).reason!, /VSS integration service is disabled/);
  assert.deepEqual(log, [], 'VSS off: the guest is not asked');
  assert.match((await atConsistentPoint(undefined, true, take, 'the VM is Paused')).reason!, /Paused/);
  const old = new VmhostError('AGENT_ERROR', 'UNKNOWN_OP', { agentCode: 'UNKNOWN_OP' });
  const p = await atConsistentPoint(agent({ freezeError: old }, log), true, take);
  assert.deepEqual([p.level, p.value], ['CrashConsistent', 1]);
  assert.match(p.reason!, /too old/);
  assert.deepEqual(log.slice(-2), [`freeze ${AUTO_THAW_MS}`, 'thaw'], 'a failed freeze is thawed anyway (it may land late)');
  assert.match((await atConsistentPoint(agent({ thawed: 0 }, log), true, take)).reason!, /thawed itself/);
  assert.match((await atConsistentPoint(agent({ thawError: new Error('gone') }, log), true, take)).reason!, /did not confirm the thaw/);
  // Nothing to freeze (no block-device file system) is still the agent's word for the whole guest.
  assert.equal((await atConsistentPoint(agent({ frozen: [], thawed: 0 }, log), true, take)).level, 'ApplicationConsistent');
});

test('a take that fails still thaws, and its error is the one thrown', async () => {
  const log: string[] = [];
  await assert.rejects(atConsistentPoint(agent({}, log), true, async () => { throw new Error('pause failed'); }), /pause failed/);
  assert.deepEqual(log, [`freeze ${AUTO_THAW_MS}`, 'thaw']);
});
