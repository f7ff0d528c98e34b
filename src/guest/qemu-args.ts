// The QEMU arguments that give a guest the agent channel: a virtio-serial controller
// and one named port backed by a unix socket that QEMU serves (so the host side can
// connect, disconnect and reconnect at will; `wait=off` so QEMU does not block at start).
import { AGENT_PORT_NAME } from './agent-client.ts';

export function agentChardevArgs(socketPath: string, id = 'agent0'): string[] {
  if (socketPath.includes(',')) throw new RangeError(`QEMU option values cannot contain ',' here: ${socketPath}`);
  return [
    '-chardev', `socket,id=${id},path=${socketPath},server=on,wait=off`,
    '-device', `virtio-serial-pci,id=${id}-bus`,
    '-device', `virtserialport,bus=${id}-bus.0,chardev=${id},name=${AGENT_PORT_NAME}`,
  ];
}
