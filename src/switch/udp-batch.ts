// The uplink's UDP socket through the batching addon (native/vmhost-udp.c, built by
// scripts/build-udp.sh into .cache/bin/<hash of its source>/): recvmmsg per readiness with one
// JS call per batch, sendmmsg per switch tick, UDP GSO and GRO where the kernel has them (one
// trip through the UDP/IP stack for a run of equal-sized datagrams). Node's dgram has none of
// these: one send call (~4 µs here) and one 'message' event per datagram. Without the addon,
// or with VMHOST_NO_UDP_ADDON=1, uplink.ts uses node:dgram (said once on stderr, the daemon's log).
// The same addon gives the VM ports' sockets a larger send buffer (`sendBuffer`, socket-port.ts).
// Depends on nothing (uplink.ts wires it to a port).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

interface OpenedLink { readonly handle: unknown; readonly port: number; readonly gso: boolean; readonly gro: boolean }

export interface UdpAddon {
  /** onBatch(data, meta, count): `count` datagrams end to end in `data`; meta holds (offset, length, GRO segment size) each, uint32. */
  open(ipv6: boolean, localAddress: string, localPort: number, remoteAddress: string, remotePort: number, bufferBytes: number,
    onBatch: (data: Buffer, meta: Buffer, count: number) => void): OpenedLink;
  /** Sends `count` datagrams laid end to end in `data` (lengths: uint32 each); the number the kernel took. */
  send(handle: unknown, data: Buffer, lengths: Buffer, count: number): number;
  /** Stop (false) or restart polling: stopped, datagrams wait in (or overflow) the kernel's receive buffer. */
  reading(handle: unknown, on: boolean): void;
  close(handle: unknown): void;
  /** Room for `bytes` in a socket's send buffer (forced where the process may); the SO_SNDBUF the kernel then reports. */
  sendBuffer(fd: number, bytes: number): number;
}

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
let addon: UdpAddon | undefined;
let loadError: string | undefined;
let loaded = false;

function load(): UdpAddon | undefined {
  if (loaded) return addon;
  loaded = true;
  try {
    const src = readFileSync(join(repo, 'native/vmhost-udp.c'));
    const hash = createHash('sha256').update(src).digest('hex').slice(0, 16);
    const path = join(process.env.VMHOST_BIN_CACHE ?? join(repo, '.cache/bin'), hash, 'vmhost-udp.node');
    if (!existsSync(path)) loadError = `${path} is not built (scripts/build-udp.sh)`;
    else addon = createRequire(import.meta.url)(path) as UdpAddon;
  } catch (e) {
    loadError = e instanceof Error ? e.message : String(e);
  }
  if (!addon) process.stderr.write(`vmhost: switch uplinks use node:dgram, one call per datagram, and VM ports keep the kernel's default send buffer: the UDP batch addon is unavailable (${loadError})\n`);
  return addon;
}

/** The addon, unless VMHOST_NO_UDP_ADDON=1 or it is not built (then said once on stderr). */
export function udpAddon(): UdpAddon | undefined {
  return process.env.VMHOST_NO_UDP_ADDON === '1' ? undefined : load();
}

/** Whether uplinks batch natively, and if not, why (tests, diagnostics). */
export function udpAddonStatus(): { native: boolean; reason?: string } {
  if (process.env.VMHOST_NO_UDP_ADDON === '1') return { native: false, reason: 'VMHOST_NO_UDP_ADDON=1' };
  return load() ? { native: true } : { native: false, reason: loadError ?? 'unknown' };
}

/**
 * Calls `each` with every datagram of a received batch, a GRO-coalesced one cut back into the
 * datagrams the peer sent: pieces of its segment size, the last one maybe shorter. The views
 * share `data`, which nothing else refers to.
 */
export function forEachDatagram(data: Buffer, meta: Buffer, count: number, each: (datagram: Uint8Array) => void): void {
  // Plain views: Buffer.subarray would build a FastBuffer per datagram. The meta as the addon
  // wrote it (native uint32, in a buffer of its own): one array per batch, not three
  // readUInt32LE calls (with their checks) per datagram.
  const ab = data.buffer, base = data.byteOffset, m = new Uint32Array(meta.buffer, meta.byteOffset, 3 * count);
  for (let i = 0; i < count; i++) {
    const off = m[3 * i]!, len = m[3 * i + 1]!, seg = m[3 * i + 2]!;
    if (seg >= len || seg === 0) { each(new Uint8Array(ab, base + off, len)); continue; }
    for (let at = off, end = off + len; at < end; at += seg) each(new Uint8Array(ab, base + at, Math.min(seg, end - at)));
  }
}

/** Bytes of datagrams staged for one sendmmsg; more in a tick flush early. */
const STAGE_BYTES = 256 << 10;
const STAGE_DATAGRAMS = 1024;

/**
 * An open socket of the addon. `send` copies the datagram into a staging buffer (the frame may
 * be a view of a port's read slab, reused after the tick) and the tick's datagrams leave
 * together at its end, in one sendmmsg: a burst read off one VM port goes out as one GSO run.
 * `lend` hands out the staging buffer's next slot instead, for a datagram built in place (an
 * encapsulation): sent, that slot is staged where it lies, without a copy.
 */
export class BatchedUdpSocket {
  private stage = Buffer.allocUnsafe(STAGE_BYTES);
  /** The stage's memory and where in it the stage starts (lend and send compare slots with them per datagram). */
  private stageMemory = this.stage.buffer;
  private stageBase = this.stage.byteOffset;
  private readonly lengths = Buffer.allocUnsafe(4 * STAGE_DATAGRAMS);
  /** `lengths` as the addon reads them: native uint32. */
  private readonly lengths32 = new Uint32Array(this.lengths.buffer, this.lengths.byteOffset, STAGE_DATAGRAMS);
  private staged = 0;
  private stagedBytes = 0;
  private closed = false;
  /** The length of the slot lent at `stagedBytes`, -1 when none: one at a time, until the next send, lend or flush. */
  private lent = -1;
  /**
   * The view lent for each datagram index of the stage, handed out again when the next batch's
   * datagram of that index has the same place and length (a stream of equal frames: every
   * batch): a view per lent frame was the cached encapsulation's main garbage (cpu profile).
   * A view names stage memory that the next batch reuses either way.
   */
  private views: (Uint8Array | undefined)[] = [];
  /** Datagrams the kernel did not take (a full socket buffer): dropped, as UDP drops. */
  sendDrops = 0;
  /** Lent slots sent after their loan ended (another datagram was staged over them): dropped, never sent garbled. */
  lendExpired = 0;

  private constructor(private readonly addon: UdpAddon, private readonly link: OpenedLink) {}

  static open(addon: UdpAddon, o: { localAddress: string; localPort: number; remoteAddress: string; remotePort: number; bufferBytes: number },
    onDatagram: (datagram: Uint8Array) => void): BatchedUdpSocket {
    const link = addon.open(o.localAddress.includes(':'), o.localAddress, o.localPort, o.remoteAddress, o.remotePort, o.bufferBytes,
      (data, meta, count) => forEachDatagram(data, meta, count, onDatagram));
    return new BatchedUdpSocket(addon, link);
  }

  get port(): number { return this.link.port; }
  /** The kernel took UDP_SEGMENT / UDP_GRO on this socket. */
  get offloads(): { gso: boolean; gro: boolean } { return { gso: this.link.gso, gro: this.link.gro }; }

  /**
   * The next slot of the staging buffer, `length` bytes, for a datagram to be built in and then
   * sent with `send(slot)` (no copy). The loan ends with the next send, lend or flush: a slot
   * sent after that is dropped (counted in lendExpired). Null: closed, too long, or a slot is
   * already lent (the caller builds its datagram elsewhere and send copies it).
   */
  lend(length: number): Uint8Array | null {
    if (this.closed || this.lent >= 0 || length > STAGE_BYTES) return null;
    if (this.stagedBytes + length > this.stage.length || this.staged === STAGE_DATAGRAMS) this.flush();
    if (length > this.stage.length) return null;
    this.lent = length;
    const at = this.stageBase + this.stagedBytes;
    let v = this.views[this.staged];
    if (v === undefined || v.byteOffset !== at || v.length !== length) { v = new Uint8Array(this.stageMemory, at, length); this.views[this.staged] = v; }
    return v;
  }

  send(datagram: Uint8Array): void {
    if (this.closed) return;
    const lent = this.lent;
    this.lent = -1;
    // The slot lent: staged where it lies. Told by identity when sent as lent (the usual case),
    // else by where it lies: a view's `buffer` is an accessor call, dearer than the rest of a send.
    if (lent >= 0 && (datagram === this.views[this.staged] ||
      (lent >= datagram.length && datagram.byteOffset === this.stageBase + this.stagedBytes && datagram.buffer === this.stageMemory))) { this.stageAt(datagram.length); return; }
    // A slot whose loan ended: another datagram may be staged over it (only a lent view, or a
    // part of one, lies in the stage, and none was lent while `views` is empty).
    if (this.views.length > 0 && datagram.buffer === this.stageMemory) { this.lendExpired++; return; }
    if (this.stagedBytes + datagram.length > this.stage.length || this.staged === STAGE_DATAGRAMS) {
      this.flush();
      if (datagram.length > this.stage.length) { this.stage = Buffer.allocUnsafe(datagram.length); this.stageMemory = this.stage.buffer; this.stageBase = this.stage.byteOffset; this.views = []; }
    }
    this.stage.set(datagram, this.stagedBytes);
    this.stageAt(datagram.length);
  }

  /** The `length` bytes at `stagedBytes` are the next datagram. */
  private stageAt(length: number): void {
    if (this.staged === 0) process.nextTick(this.flushLater);
    this.lengths32[this.staged] = length;
    this.stagedBytes += length;
    this.staged++;
  }

  /** Back-pressure: datagrams wait in the kernel's buffer, unread, rather than being read and dropped. */
  reading(on: boolean): void {
    if (!this.closed) this.addon.reading(this.link.handle, on);
  }

  private readonly flushLater = (): void => this.flush();

  private flush(): void {
    this.lent = -1;
    const n = this.staged;
    if (n === 0 || this.closed) return;
    this.staged = this.stagedBytes = 0;
    this.sendDrops += n - this.addon.send(this.link.handle, this.stage, this.lengths, n);
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.addon.close(this.link.handle);
  }
}
