// Set-VMMemory and Set-VM's memory parameters applied to a VM's config, as a pure function.
// Hyper-V 2012 R2's rules for a running VM: it may widen its range (MinimumBytes down,
// MaximumBytes up) and take a new Buffer or Priority; everything else (startup memory,
// turning dynamic memory on or off, narrowing the range) waits until it is off. Depends on
// vm-config.ts only.
import { VmhostError } from '../common/index.ts';
import { checkDynamicMemory, checkMemory, fmtBytes, type VmConfig } from './vm-config.ts';

/** The memory parameters, named as Set-VMMemory spells them. */
export interface MemoryChange {
  StartupBytes?: number;
  DynamicMemoryEnabled?: boolean;
  MinimumBytes?: number;
  MaximumBytes?: number;
  Buffer?: number;
  Priority?: number;
}

export function hasMemoryChange(p: MemoryChange): boolean {
  return Object.values(p).some((v) => v !== undefined);
}

function needsOff(vm: string, param: string, why: string): VmhostError {
  return new VmhostError('MEMORY_CHANGE_NEEDS_OFF',
    `${param}: ${why} while VM '${vm}' runs; a running VM may only lower MinimumBytes, raise MaximumBytes, or change Buffer and Priority — turn it off first`,
    { vm, param });
}

/**
 * The config with the change made, validated as a whole (min ≤ startup ≤ max and the rest of
 * checkDynamicMemory). `running`: the VM has a QEMU, so only the widening changes pass.
 */
export function applyMemoryChange(c: VmConfig, p: MemoryChange, running: boolean): VmConfig {
  const d = { ...c.dynamicMemory };
  const startup = p.StartupBytes ?? c.memoryStartupBytes;
  if (p.StartupBytes !== undefined) checkMemory(p.StartupBytes, 'StartupBytes');
  if (p.DynamicMemoryEnabled !== undefined) d.enabled = p.DynamicMemoryEnabled;
  if (p.MinimumBytes !== undefined) d.minimumBytes = p.MinimumBytes;
  if (p.MaximumBytes !== undefined) d.maximumBytes = p.MaximumBytes;
  if (p.Buffer !== undefined) d.bufferPercent = p.Buffer;
  if (p.Priority !== undefined) d.priority = p.Priority;
  if (running) {
    const was = c.dynamicMemory;
    if (startup !== c.memoryStartupBytes) throw needsOff(c.name, 'StartupBytes', 'the startup memory cannot change');
    if (d.enabled !== was.enabled) throw needsOff(c.name, 'DynamicMemoryEnabled', `dynamic memory cannot be turned ${d.enabled ? 'on' : 'off'}`);
    if (d.minimumBytes > was.minimumBytes) throw needsOff(c.name, 'MinimumBytes', `the minimum cannot rise from ${fmtBytes(was.minimumBytes)} to ${fmtBytes(d.minimumBytes)}`);
    if (d.maximumBytes < was.maximumBytes) throw needsOff(c.name, 'MaximumBytes', `the maximum cannot fall from ${fmtBytes(was.maximumBytes)} to ${fmtBytes(d.maximumBytes)}`);
  }
  // Static memory: the dynamic range follows the startup memory, so it stays valid for the day dynamic memory is turned on.
  if (!d.enabled) {
    d.minimumBytes = Math.min(d.minimumBytes, startup);
    d.maximumBytes = Math.max(d.maximumBytes, startup);
  }
  checkDynamicMemory(d, startup, c.numaNodes, c.name);
  return { ...c, memoryStartupBytes: startup, dynamicMemory: d };
}

/** The bounds the balancer works in: a static VM's memory is its startup memory, fixed. */
export function memoryBounds(c: VmConfig): { minimumBytes: number; maximumBytes: number } {
  return c.dynamicMemory.enabled
    ? { minimumBytes: c.dynamicMemory.minimumBytes, maximumBytes: c.dynamicMemory.maximumBytes }
    : { minimumBytes: c.memoryStartupBytes, maximumBytes: c.memoryStartupBytes };
}
