// Byte-exact reading from a stream socket: incoming chunks are queued and handed out as
// buffers of the size the protocol asks for. `takeNow(n)` answers synchronously when the
// bytes are already here (the fast path of the transmission loop); `take(n)` waits for them
// and rejects when the connection ends first. A request that spans chunks is copied once.
import type { Socket } from 'node:net';

export class ConnectionClosed extends Error {
  constructor() {
    super('connection closed');
    this.name = 'ConnectionClosed';
  }
}

export class SocketReader {
  private chunks: Buffer[] = [];
  private head = 0;
  private buffered = 0;
  private ended = false;
  private waiter: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  /** Pause the socket while this many bytes are queued and nobody asks for them. */
  private readonly highWater: number;

  constructor(private readonly socket: Socket, highWater = 64 * 1024 * 1024) {
    this.highWater = highWater;
    socket.on('data', (b: Buffer) => this.onData(b));
    const end = () => this.onEnd();
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }

  get closed(): boolean {
    return this.ended;
  }

  private onData(b: Buffer): void {
    this.chunks.push(b);
    this.buffered += b.length;
    if (this.waiter && this.buffered >= this.waiter.n) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve(this.takeNow(w.n)!);
    }
    if (this.buffered > this.highWater && !this.waiter) this.socket.pause();
  }

  private onEnd(): void {
    if (this.ended) return;
    this.ended = true;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(new ConnectionClosed());
  }

  /** `n` bytes if they are already buffered, else undefined. */
  takeNow(n: number): Buffer | undefined {
    if (this.buffered < n) return undefined;
    this.buffered -= n;
    const first = this.chunks[0]!;
    const avail = first.length - this.head;
    if (avail >= n) {
      const out = first.subarray(this.head, this.head + n);
      this.head += n;
      if (this.head === first.length) {
        this.chunks.shift();
        this.head = 0;
      }
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let done = 0;
    while (done < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length - this.head, n - done);
      c.copy(out, done, this.head, this.head + k);
      done += k;
      this.head += k;
      if (this.head === c.length) {
        this.chunks.shift();
        this.head = 0;
      }
    }
    return out;
  }

  /** Wait for `n` bytes. Only one pending take at a time. */
  take(n: number): Promise<Buffer> {
    const now = this.takeNow(n);
    if (now) return Promise.resolve(now);
    if (this.ended) return Promise.reject(new ConnectionClosed());
    if (this.socket.isPaused()) this.socket.resume();
    return new Promise((resolve, reject) => {
      this.waiter = { n, resolve, reject };
    });
  }

  /** Resume reading if flow control paused the socket. */
  resume(): void {
    if (!this.ended && this.socket.isPaused()) this.socket.resume();
  }

  pause(): void {
    if (!this.ended) this.socket.pause();
  }
}
