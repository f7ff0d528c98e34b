import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isVmhostError } from '../common/index.ts';
import { applyMemoryChange } from './memory-settings.ts';
import { defaultDynamicMemory, type VmConfig } from './vm-config.ts';

const MB = 1024 * 1024;
const base = {
  name: 'web', memoryStartupBytes: 256 * MB, numaNodes: 1,
  dynamicMemory: { ...defaultDynamicMemory(256 * MB), enabled: true, minimumBytes: 128 * MB, maximumBytes: 1024 * MB },
} as VmConfig;
const code = (fn: () => unknown) => {
  try { fn(); } catch (e) { return isVmhostError(e) ? `${e.code} ${String(e.context.param)}` : String(e); }
  return 'ok';
};

test('off: any valid change; min ≤ startup ≤ max, 2 MB units, Buffer 5–2000, Priority 0–100', () => {
  const c = applyMemoryChange(base, { StartupBytes: 512 * MB, MinimumBytes: 256 * MB, MaximumBytes: 2048 * MB, Buffer: 50, Priority: 80 }, false);
  assert.deepEqual([c.memoryStartupBytes, c.dynamicMemory.minimumBytes, c.dynamicMemory.maximumBytes, c.dynamicMemory.bufferPercent, c.dynamicMemory.priority],
    [512 * MB, 256 * MB, 2048 * MB, 50, 80]);
  assert.equal(code(() => applyMemoryChange(base, { MinimumBytes: 300 * MB }, false)), 'INVALID_ARGUMENT MinimumBytes');
  assert.equal(code(() => applyMemoryChange(base, { MaximumBytes: 200 * MB }, false)), 'INVALID_ARGUMENT MaximumBytes');
  assert.equal(code(() => applyMemoryChange(base, { MinimumBytes: 129 * MB }, false)), 'INVALID_ARGUMENT MinimumBytes');
  assert.equal(code(() => applyMemoryChange(base, { Buffer: 4 }, false)), 'INVALID_ARGUMENT Buffer');
  assert.equal(code(() => applyMemoryChange(base, { Buffer: 2001 }, false)), 'INVALID_ARGUMENT Buffer');
  assert.equal(code(() => applyMemoryChange(base, { Priority: 101 }, false)), 'INVALID_ARGUMENT Priority');
  assert.equal(code(() => applyMemoryChange({ ...base, numaNodes: 2 }, { Buffer: 30 }, false)), 'INVALID_ARGUMENT DynamicMemoryEnabled', 'no dynamic memory with virtual NUMA');
});

test('static memory: a new startup memory carries the range along', () => {
  const c = applyMemoryChange({ ...base, dynamicMemory: { ...base.dynamicMemory, enabled: false, minimumBytes: 512 * MB } }, { StartupBytes: 256 * MB }, false);
  assert.deepEqual([c.memoryStartupBytes, c.dynamicMemory.minimumBytes, c.dynamicMemory.maximumBytes], [256 * MB, 256 * MB, 1024 * MB]);
});

test('running: the range widens, Buffer and Priority change; the reverse is refused with MEMORY_CHANGE_NEEDS_OFF', () => {
  const c = applyMemoryChange(base, { MinimumBytes: 64 * MB, MaximumBytes: 2048 * MB, Buffer: 40, Priority: 10 }, true);
  assert.deepEqual([c.dynamicMemory.minimumBytes, c.dynamicMemory.maximumBytes], [64 * MB, 2048 * MB]);
  assert.equal(code(() => applyMemoryChange(base, { MinimumBytes: 192 * MB }, true)), 'MEMORY_CHANGE_NEEDS_OFF MinimumBytes');
  assert.equal(code(() => applyMemoryChange(base, { MaximumBytes: 512 * MB }, true)), 'MEMORY_CHANGE_NEEDS_OFF MaximumBytes');
  assert.equal(code(() => applyMemoryChange(base, { StartupBytes: 512 * MB }, true)), 'MEMORY_CHANGE_NEEDS_OFF StartupBytes');
  assert.equal(code(() => applyMemoryChange(base, { DynamicMemoryEnabled: false }, true)), 'MEMORY_CHANGE_NEEDS_OFF DynamicMemoryEnabled');
  assert.equal(code(() => applyMemoryChange(base, { MinimumBytes: 256 * MB }, true)), 'MEMORY_CHANGE_NEEDS_OFF MinimumBytes');
});
