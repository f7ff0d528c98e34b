// Where a VM's files live. Config and logs sit in <data>/vms/<id>/; sockets need short
// paths (sun_path is 108 bytes), so they move to the host's private short root
// (runtime-dir.ts, checked at daemon start) when the data dir is deep.
import { join } from 'node:path';
import { VM_SOCKET_BUDGET, shortSocketRoot } from './runtime-dir.ts';
import type { MemoryPlan } from './vm-memory.ts';
import type { BootSourceKind } from './boot-order.ts';

/** `saved-state.bin.json`, beside the saved memory. `boot`: what the saved VM was booted from, so a restore rebuilds the same machine. */
export interface SavedInfo {
  uptimeMs: number; savedAt: string; boot?: BootSourceKind;
  /** The memory layout the saved machine had (dynamic memory): a restore must rebuild the same devices. */
  memory?: MemoryPlan;
}

export interface VmPaths {
  dir: string;
  config: string;
  runtime: string;
  serialLog: string;
  qemuLog: string;
  savedState: string;
  firmwareVars: string;
  /** The secure-boot variable store (Microsoft keys enrolled): its own file, so turning secure boot off and on again keeps each store's boot entries. */
  firmwareVarsSecure: string;
  firmwareLog: string;
  sockets: string;
  qmpSocket: string;
  agentSocket: string;
  serialSocket: string;
  vncSocket: string;
  pidFile: string;
}

export function vmPaths(dataDir: string, id: string): VmPaths {
  return pathsIn(join(dataDir, 'vms', id), dataDir, id);
}

/**
 * A clustered VM: config, logs, NVRAM and saved state in the cluster's shared folder
 * (`<shared>/vms/<id>`, which every node reaches), but what belongs to the QEMU of one node —
 * runtime.json and the sockets — stays in the node's own data dir (`<data>/clustered/<id>`):
 * a dead owner's leftovers never look like a QEMU to re-attach on the node that takes over.
 */
export function clusteredVmPaths(dataDir: string, sharedRoot: string, id: string): VmPaths {
  const local = pathsIn(join(dataDir, 'clustered', id), dataDir, id);
  return { ...pathsIn(join(sharedRoot, 'vms', id), dataDir, id), runtime: local.runtime, ...socketsOf(local.sockets) };
}

function socketsOf(sockets: string): Pick<VmPaths, 'sockets' | 'qmpSocket' | 'agentSocket' | 'serialSocket' | 'vncSocket' | 'pidFile'> {
  return {
    sockets,
    qmpSocket: join(sockets, 'qmp.sock'),
    agentSocket: join(sockets, 'agent.sock'),
    serialSocket: join(sockets, 'serial.sock'),
    vncSocket: join(sockets, 'vnc.sock'),
    pidFile: join(sockets, 'qemu.pid'),
  };
}

function pathsIn(dir: string, dataDir: string, id: string): VmPaths {
  let sockets = join(dir, 'run');
  if (join(sockets, 'serial.sock').length > VM_SOCKET_BUDGET) sockets = join(shortSocketRoot(dataDir), id.slice(0, 13));
  return {
    dir,
    config: join(dir, 'vm.json'),
    runtime: join(dir, 'runtime.json'),
    serialLog: join(dir, 'serial.log'),
    qemuLog: join(dir, 'qemu.log'),
    savedState: join(dir, 'saved-state.bin'),
    firmwareVars: join(dir, 'OVMF_VARS.fd'),
    firmwareVarsSecure: join(dir, 'OVMF_VARS_SB.fd'),
    firmwareLog: join(dir, 'firmware.log'),
    ...socketsOf(sockets),
  };
}
