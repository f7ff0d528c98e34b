// The External switch's uplink: frames tunnelled to a peer switch over UDP, one datagram per
// Ethernet frame (tagged for VLANs other than 0), on loopback or netns addresses — the test
// datacenter's "physical" network. Only datagrams from the configured peer are accepted.
// Every KEEPALIVE_MS an empty datagram goes to the peer, so the far end (a NIC team member,
// team-uplink.ts) can tell a live link from a pulled cable even when no frame flows; a
// datagram shorter than an Ethernet header is such a keepalive and is never a frame (an
// empty one is also what tshark decodes without complaint). Depends on port-io.
import { createSocket, type Socket } from 'node:dgram';
import { VmhostError } from '../common/errors.ts';
import type { PortIo, PortIoEvents, SendResult } from './port-io.ts';
import { pin, unpin } from './record-slab.ts';

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

export class UdpUplinkIo implements PortIo {
  readonly connected = true;
  private paused = false;
  /** performance.now() of the last datagram from the peer (frame or keepalive); the open time until one comes. */
  lastHeard = performance.now();
  private readonly keepalive: NodeJS.Timeout;
  private constructor(private readonly sock: Socket, readonly settings: UplinkSettings, readonly boundPort: number) {
    this.keepalive = setInterval(() => this.sock.send(KEEPALIVE, this.settings.remotePort, this.settings.remoteAddress), KEEPALIVE_MS);
    this.keepalive.unref();
  }

  get endpoint(): string { return `udp:${this.settings.localAddress}:${this.boundPort}->${this.settings.remoteAddress}:${this.settings.remotePort}`; }

  static async open(s: UplinkSettings, ev: PortIoEvents): Promise<UdpUplinkIo> {
    const sock = createSocket({ type: s.localAddress.includes(':') ? 'udp6' : 'udp4', recvBufferSize: RECV_BUFFER_BYTES });
    await new Promise<void>((resolve, reject) => {
      sock.once('error', (e) => reject(new VmhostError('SWITCH_UPLINK', `cannot bind uplink ${s.localAddress}:${s.localPort}: ${e.message}`, { op: 'uplink' }, { cause: e })));
      sock.bind(s.localPort, s.localAddress, () => resolve());
    });
    const io = new UdpUplinkIo(sock, s, sock.address().port);
    sock.on('error', () => ev.onError('uplink-error'));
    sock.on('message', (msg, rinfo) => {
      if (rinfo.address !== s.remoteAddress || (s.remotePort !== 0 && rinfo.port !== s.remotePort)) return;
      io.lastHeard = performance.now();
      if (io.paused || msg.length < MIN_FRAME_BYTES) return;
      ev.onFrame(msg);
    });
    return io;
  }

  send(frame: Uint8Array): SendResult {
    // A datagram the kernel does not take at once is sent later from the frame's own bytes,
    // which may sit in a socket port's read slab: pinned until sent (record-slab.ts).
    const buf = frame.buffer;
    pin(buf);
    this.sock.send(frame, this.settings.remotePort, this.settings.remoteAddress, () => unpin(buf));
    return 'ok';
  }

  readonly congested = false;
  whenDrained(cb: () => void): void { cb(); }
  pause(): void { this.paused = true; }
  resume(): void { this.paused = false; }

  async close(): Promise<void> {
    clearInterval(this.keepalive);
    await new Promise<void>((r) => this.sock.close(() => r()));
  }
}
