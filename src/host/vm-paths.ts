// Where a VM's files live. Config and logs sit in <data>/vms/<id>/; sockets need short
// paths (sun_path is 108 bytes), so they move to a per-host tmp dir when the data dir is deep.
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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

const SUN_PATH_BUDGET = 100;

export function vmPaths(dataDir: string, id: string): VmPaths {
  const dir = join(dataDir, 'vms', id);
  let sockets = join(dir, 'run');
  if (join(sockets, 'serial.sock').length > SUN_PATH_BUDGET) {
    const host = createHash('sha256').update(dataDir).digest('hex').slice(0, 12);
    sockets = join(tmpdir(), `vmhost-${host}`, id.slice(0, 13));
  }
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
    sockets,
    qmpSocket: join(sockets, 'qmp.sock'),
    agentSocket: join(sockets, 'agent.sock'),
    serialSocket: join(sockets, 'serial.sock'),
    vncSocket: join(sockets, 'vnc.sock'),
    pidFile: join(sockets, 'qemu.pid'),
  };
}
