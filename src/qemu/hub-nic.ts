// A VM NIC on a switch port. QEMU 7.2's stream netdev neither reconnects nor can a NIC be
// re-peered at runtime, so the NIC is peered with port 0 of a per-NIC hub and the switch
// socket joins the same hub through an "uplink" hub port: re-plugging (after a daemon
// restart, Connect-/Disconnect-VMNetworkAdapter) swaps only the uplink; the guest's device,
// its link and its IP configuration stay as they are.
//
// The hub must never be left with port 0 alone: a hub port can receive only while another
// port of its hub can send, so a frame the guest transmits then is queued with virtio-net
// waiting for its completion, and nothing flushes that queue when a new port joins — the
// guest's transmit path stays stalled for good (seen as "no ping after Connect"). So every
// re-plug adds the new uplink before it deletes the old one (uplink ids carry a generation,
// read back from QEMU's own netdev list so a re-attached daemon knows it too), and a
// disconnected NIC's uplink is a hub port with no peer: it accepts and drops every frame,
// like a cable to nowhere, while a connected one still passes the switch's back-pressure.
// Depends on: ./qmp-client.
import type { QmpClient } from './qmp-client.ts';

export interface HubNic {
  /** Device id (also the prefix of its netdev ids). */
  id: string;
  mac: string;
  model: 'virtio' | 'legacy';
  /** Hub number, unique within the VM. */
  hub: number;
  /** The switch port's socket, or null for a NIC that is not connected. */
  streamSocketPath: string | null;
  /** Firmware boot order position (network boot), when it is in the boot order. */
  bootIndex?: number;
}

const devicePortId = (nicId: string): string => `${nicId}-hp0`;
const uplinkId = (nicId: string, gen: number): string => `${nicId}-up${gen}`;
const streamId = (nicId: string, gen: number): string => `${nicId}-st${gen}`;

/** QEMU arguments of one NIC (added to the launch's extra arguments). */
export function hubNicArgs(n: HubNic, generation: 1 | 2): string[] {
  const model = n.model === 'legacy' && generation === 1 ? 'e1000' : 'virtio-net-pci';
  const a: string[] = [];
  if (n.streamSocketPath) {
    a.push('-netdev', `stream,id=${streamId(n.id, 0)},server=off,addr.type=unix,addr.path=${n.streamSocketPath.replace(/,/g, ',,')}`);
    a.push('-netdev', `hubport,id=${uplinkId(n.id, 0)},hubid=${n.hub},netdev=${streamId(n.id, 0)}`);
  } else {
    a.push('-netdev', `hubport,id=${uplinkId(n.id, 0)},hubid=${n.hub}`);
  }
  a.push('-netdev', `hubport,id=${devicePortId(n.id)},hubid=${n.hub}`);
  a.push('-device', `${model},netdev=${devicePortId(n.id)},mac=${n.mac.toLowerCase()},id=${n.id}${n.bootIndex !== undefined ? `,bootindex=${n.bootIndex}` : ''}`);
  return a;
}

/** The NIC's uplink hub ports QEMU has now, with their peers, read from `info network` lines such as ` \ n0-up2: n0-st2: index=0,type=stream,…`. */
export function parseUplinks(infoNetwork: string, nicId: string): { gen: number; peer: string | null }[] {
  const id = nicId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`^\\s*\\\\ ${id}-up(\\d+)(?:: ([^:\\s]+):)?`, 'gm');
  return [...infoNetwork.matchAll(re)].map((m) => ({ gen: Number(m[1]), peer: m[2] ?? null }));
}

/** Point the NIC's uplink at a (new or re-listening) switch socket, or at nothing (null). */
export async function replugNicStream(qmp: QmpClient, nicId: string, hub: number, socketPath: string | null): Promise<void> {
  const info = (await qmp.executeRaw('human-monitor-command', { 'command-line': 'info network' })) as string;
  const old = parseUplinks(info, nicId);
  const gen = Math.max(-1, ...old.map((u) => u.gen)) + 1;
  if (socketPath) {
    await qmp.executeRaw('netdev_add', { type: 'stream', id: streamId(nicId, gen), server: false, addr: { type: 'unix', path: socketPath } });
    await qmp.executeRaw('netdev_add', { type: 'hubport', id: uplinkId(nicId, gen), hubid: hub, netdev: streamId(nicId, gen) });
  } else {
    await qmp.executeRaw('netdev_add', { type: 'hubport', id: uplinkId(nicId, gen), hubid: hub });
  }
  for (const u of old) {
    await qmp.executeRaw('netdev_del', { id: uplinkId(nicId, u.gen) });
    if (u.peer) await qmp.executeRaw('netdev_del', { id: u.peer });
  }
}
