// How a port's frames reach its peer. A PortIo sends frames to the peer and reports the
// peer's frames through the `onFrame` callback given at creation. Three kinds:
// socket (socket-port.ts, a VM NIC), uplink (uplink.ts, UDP tunnel; team-uplink.ts, a NIC team of them) and sink (in-process:
// tests, the bench, later the host's own vNIC). Depends on nothing.

export type SendResult = 'ok' | 'not-connected' | 'full';

export interface PortIo {
  /**
   * Sends the `length` bytes of `bytes` from `start`: the whole of a frame (0, its length), or
   * part of one — a tunnel's inner frame handed on as it lies in the outer one, so no view is
   * made per frame for it (a view per decapsulated frame was a tenth of the decapsulating
   * host's CPU, BENCHMARKS.md "NVGRE at 64 B").
   * `sourcePort`: the switch port the frame came from, when known (a NIC team balances by it).
   * `framed`: the 4 bytes before `start` in the buffer are the frame's stream record header (it
   * is a record read off a socket port, forwarded unchanged) and stay as they are: a socket
   * port may then send the record as it came, without a copy.
   * `bytes` may be a view of a socket port's read slab, read into again once this call and the
   * tick are over: an implementation that hands its bytes on later (a queued write or send)
   * pins the buffer until then (record-slab.ts `pin`/`unpin`), or copies it.
   */
  send(bytes: Uint8Array, start: number, length: number, sourcePort?: string, framed?: boolean): SendResult;
  /**
   * A slot of the port's next send batch, `length` bytes, to build a frame in; `send(slot)`
   * then sends it without a copy. The loan ends with the next send or lend on the port: build
   * the frame and send it before anything else is sent there. Null (or not implemented): the
   * port has none to lend — build the frame elsewhere.
   */
  lend?(length: number): Uint8Array | null;
  readonly connected: boolean;
  /** Stop / restart reading from the peer (back-pressure from a rate limit). */
  pause(): void;
  resume(): void;
  close(): Promise<void>;
  /** More than a high-water mark waits to be sent to the peer. */
  readonly congested: boolean;
  /** Calls `cb` once when the queued data has drained (or at once if not congested). */
  whenDrained(cb: () => void): void;
  /** Human-readable endpoint: a socket path, a UDP address. */
  readonly endpoint: string;
}

export interface PortIoEvents {
  /** `framed`: as for PortIo.send — the frame is a view preceded by its record header. */
  onFrame(frame: Uint8Array, framed?: boolean): void;
  /** A stream was cut for a reason (bad record length): counted as a drop. */
  onError(reason: 'stream-corrupt' | 'uplink-error'): void;
  onConnection?(connected: boolean): void;
}

/** In-process port: frames toward the port are handed to `sink` (a view valid only during the call). */
export class SinkIo implements PortIo {
  readonly connected = true;
  readonly endpoint = 'in-process';
  constructor(private readonly sink: (frame: Uint8Array) => void) {}
  send(bytes: Uint8Array, start: number, length: number): SendResult { this.sink(frameOf(bytes, start, length)); return 'ok'; }
  readonly congested = false;
  pause(): void {}
  resume(): void {}
  whenDrained(cb: () => void): void { cb(); }
  async close(): Promise<void> {}
}

/** The frame PortIo.send was given, as a Uint8Array of its own: `bytes` itself when it is the whole frame. */
export function frameOf(bytes: Uint8Array, start: number, length: number): Uint8Array {
  return start === 0 && length === bytes.length ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset + start, length);
}
