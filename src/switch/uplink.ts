// The External switch's uplink: frames tunnelled to a peer switch over UDP, one datagram per
// Ethernet frame (tagged for VLANs other than 0), on loopback or netns addresses — the test
// datacenter's "physical" network. Only datagrams from the configured peer are accepted.
// Every KEEPALIVE_MS an empty datagram goes to the peer, so the far end (a NIC team member,
// team-uplink.ts) can tell a live link from a pulled cable even when no frame flows; a
// datagram shorter than an Ethernet header is such a keepalive and is never a frame (an
// empty one is also what tshark decodes without complaint). The socket is the batching
// addon's (udp-batch.ts: recvmmsg/sendmmsg, UDP GSO/GRO) when it is built, else node:dgram.
// Depends on port-io, record-slab, udp-batch, coarse-clock.
import { createSocket, type Socket } from 'node:dgram';
import { VmhostError } from '../common/errors.ts';
import { frameOf, type PortIo, type PortIoEvents, type SendResult } from './port-io.ts';
import { pin, unpin } from './record-slab.ts';
import { BatchedUdpSocket, udpAddon } from './udp-batch.ts';
import { CoarseClock } from './coarse-clock.ts';

export interface UplinkSettings {
  /** Local address and UDP port to bind, e.g. 127.0.0.1 and 47000 (0 = any free port). */
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
}

const KEEPALIVE_MS = 1000;
/**
 * The socket's receive buffer. The default (208 KiB, ~130 full frames) overflowed whenever the
 * event loop spent a turn on a VM port's read (up to a few hundred frames): the kernel dropped
 * the peer's datagrams (RcvbufErrors; bench/nvgre.ts lost 40–75 % of NVGRE frames). The kernel
 * caps it at net.core.rmem_max (4 MiB here).
 */
const RECV_BUFFER_BYTES = 4 << 20;
/** Destination MAC, source MAC, EtherType: anything shorter is not a frame. */
const MIN_FRAME_BYTES = 14;
const KEEPALIVE = new Uint8Array(0);

/** Where the uplink's datagrams go: the addon's batching socket or a node:dgram one. */
interface UplinkSocket {
  readonly port: number;
  send(datagram: Uint8Array): void;
  /** A slot of the next send batch to build a datagram in (the addon's); null: none. */
  lend?(length: number): Uint8Array | null;
  /** Stop / restart reading, where the socket can (the addon's); else paused frames are read and dropped. */
  reading?(on: boolean): void;
  close(): void | Promise<void>;
}

export class UdpUplinkIo implements PortIo {
  readonly connected = true;
  private paused = false;
  /**
   * performance.now() of the last datagram from the peer (frame or keepalive); the open time
   * until one comes. Read once per burst of datagrams (coarse-clock.ts): a clock read per
   * datagram was 6 % of the decapsulating host's CPU at 64 B (cpu profile of bench/nvgre.ts's
   * host B); a member's failure (team-uplink.ts, seconds) is seen at most a burst later.
   */
  lastHeard = performance.now();
  private readonly heardClock = new CoarseClock(() => performance.now()).now;
  private readonly keepalive: NodeJS.Timeout;
  private sock!: UplinkSocket;
  /** Whether the socket is the batching addon's (false: node:dgram). */
  batched = false;

  private constructor(readonly settings: UplinkSettings, private readonly ev: PortIoEvents) {
    this.keepalive = setInterval(() => this.sock.send(KEEPALIVE), KEEPALIVE_MS);
    this.keepalive.unref();
  }

  get boundPort(): number { return this.sock.port; }
  get endpoint(): string { return `udp:${this.settings.localAddress}:${this.boundPort}->${this.settings.remoteAddress}:${this.settings.remotePort}`; }

  static async open(s: UplinkSettings, ev: PortIoEvents): Promise<UdpUplinkIo> {
    const io = new UdpUplinkIo(s, ev);
    try {
      const addon = udpAddon();
      // An address the addon cannot parse (an IPv6 scope id: fe80::1%eth0) is left to node:dgram.
      const batched = addon && batchedSocket(addon, s, io.received);
      io.batched = batched !== undefined;
      io.sock = batched ?? await dgramSocket(s, io.received, () => ev.onError('uplink-error'));
    } catch (e) {
      clearInterval(io.keepalive);
      throw e instanceof VmhostError ? e : bindError(s, e as Error);
    }
    return io;
  }

  /** A datagram from the peer (the socket dropped everyone else's). */
  private readonly received = (datagram: Uint8Array): void => {
    this.lastHeard = this.heardClock();
    if (this.paused || datagram.length < MIN_FRAME_BYTES) return;
    this.ev.onFrame(datagram);
  };

  send(bytes: Uint8Array, start: number, length: number): SendResult {
    this.sock.send(frameOf(bytes, start, length));
    return 'ok';
  }

  lend(length: number): Uint8Array | null { return this.sock.lend?.(length) ?? null; }

  readonly congested = false;
  whenDrained(cb: () => void): void { cb(); }
  pause(): void { this.paused = true; this.sock.reading?.(false); }
  resume(): void { this.paused = false; this.sock.reading?.(true); }

  async close(): Promise<void> {
    clearInterval(this.keepalive);
    await this.sock.close();
  }
}

function bindError(s: UplinkSettings, e: Error): VmhostError {
  return new VmhostError('SWITCH_UPLINK', `cannot bind uplink ${s.localAddress}:${s.localPort}: ${e.message}`, { op: 'uplink' }, { cause: e });
}

/** The addon's socket: it copies each datagram into its tick's batch, so nothing is pinned. */
function batchedSocket(addon: NonNullable<ReturnType<typeof udpAddon>>, s: UplinkSettings, received: (d: Uint8Array) => void): UplinkSocket | undefined {
  let sock: BatchedUdpSocket;
  try {
    sock = BatchedUdpSocket.open(addon, { ...s, bufferBytes: RECV_BUFFER_BYTES }, received);
  } catch (e) {
    if (e instanceof TypeError) return undefined;
    throw e;
  }
  // The socket itself, not a wrapper: send and lend are per frame.
  return sock;
}

/** node:dgram: one send call and one 'message' event per datagram (the fallback). */
async function dgramSocket(s: UplinkSettings, received: (d: Uint8Array) => void, onError: () => void): Promise<UplinkSocket> {
  const sock: Socket = createSocket({ type: s.localAddress.includes(':') ? 'udp6' : 'udp4', recvBufferSize: RECV_BUFFER_BYTES });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', (e) => reject(bindError(s, e)));
    sock.bind(s.localPort, s.localAddress, () => resolve());
  });
  sock.on('error', onError);
  sock.on('message', (msg, rinfo) => {
    if (rinfo.address !== s.remoteAddress || (s.remotePort !== 0 && rinfo.port !== s.remotePort)) return;
    received(msg);
  });
  return {
    port: sock.address().port,
    send: (frame) => {
      // A datagram the kernel does not take at once is sent later from the frame's own bytes,
      // which may sit in a socket port's read slab: pinned until sent (record-slab.ts).
      const buf = frame.buffer;
      pin(buf);
      sock.send(frame, s.remotePort, s.remoteAddress, () => unpin(buf));
    },
    close: () => new Promise<void>((r) => sock.close(() => r())),
  };
}
