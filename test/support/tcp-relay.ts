// Test support: a TCP relay on 127.0.0.1 standing for the network link between a client and its
// target, so a test can degrade that link. It listens on a free loopback port and forwards each
// connection to the target; TLS and every other protocol run end to end through it.
//   - A rate in bytes per second per direction stands for a slow WAN link: after each chunk the
//     sending side is paused for as long as that chunk takes at the rate (and until the receiving
//     side drained), so TCP back-pressure holds the sender. `setRate(dir, Infinity)` frees it.
//   - `cut()` is a firewall's DROP rule: every byte vanishes in both directions — on open
//     connections and on new ones, which are accepted and then hear nothing — so a client sees what
//     a dropped packet gives it: a request that hangs until its own timeout, not a refusal it could
//     act on at once. `heal()` lets new connections through again and closes the ones that were cut
//     (bytes were lost in the middle of their streams; real TCP would have retransmitted them, a
//     relay cannot, so the endpoints reconnect instead).
import { connect, createServer, type Server, type Socket } from 'node:net';

/** `up`: client → target; `down`: target → client. */
export type Direction = 'up' | 'down';
export type PerDirection = Record<Direction, number>;

export class TcpRelay {
  private isCut = false;
  private readonly bytes: PerDirection = { up: 0, down: 0 };
  private readonly lost: PerDirection = { up: 0, down: 0 };
  /** Every socket the relay holds, on both sides. */
  private readonly sockets = new Set<Socket>();
  /** The sockets of connections a cut reached (open at the cut, or accepted during it): closed at the heal. */
  private readonly cutOpen = new Set<Socket>();
  /** Pacing holds under way, cleared by close() so that no timer outlives the relay. */
  private readonly holds = new Set<NodeJS.Timeout>();

  private constructor(private readonly server: Server, readonly port: number, private readonly rate: PerDirection) {}

  /** A relay to `target` (host defaults to 127.0.0.1); `rate`: bytes/s per direction, unlimited when left out. */
  static async start(target: { host?: string; port: number }, rate: Partial<PerDirection> = {}): Promise<TcpRelay> {
    const server = createServer();
    await new Promise<void>((ok, fail) => { server.once('error', fail); server.listen(0, '127.0.0.1', ok); });
    const relay = new TcpRelay(server, (server.address() as { port: number }).port, { up: Infinity, down: Infinity, ...rate });
    server.on('connection', (client) => relay.accept(client, target.host ?? '127.0.0.1', target.port));
    return relay;
  }

  /** Bytes forwarded so far per direction (bytes a cut dropped are not counted). */
  relayed(): PerDirection {
    return { ...this.bytes };
  }

  /** Bytes a cut dropped so far per direction: what a test awaits to know the relay has seen them. */
  dropped(): PerDirection {
    return { ...this.lost };
  }

  /** Takes effect from the next chunk on; Infinity frees the direction. */
  setRate(dir: Direction, bytesPerSecond: number): void {
    this.rate[dir] = bytesPerSecond;
  }

  cut(): void {
    this.isCut = true;
    for (const s of this.sockets) this.cutOpen.add(s);
  }

  heal(): void {
    this.isCut = false;
    for (const s of this.cutOpen) s.destroy();
    this.cutOpen.clear();
  }

  async close(): Promise<void> {
    for (const t of this.holds) clearTimeout(t);
    this.holds.clear();
    const closing = [...this.sockets].filter((s) => !s.closed).map((s) => new Promise((r) => s.once('close', r)));
    for (const s of this.sockets) s.destroy();
    await Promise.all([...closing, new Promise((r) => this.server.close(r))]);
  }

  private track(s: Socket): void {
    this.sockets.add(s);
    s.on('error', () => undefined);
    s.once('close', () => { this.sockets.delete(s); this.cutOpen.delete(s); });
  }

  private accept(client: Socket, host: string, port: number): void {
    this.track(client);
    if (this.isCut) {
      // Accepted, then silence: what a client behind a DROP rule sees once a SYN got through.
      client.on('data', (chunk: Buffer) => { this.lost.up += chunk.length; });
      this.cutOpen.add(client);
      return;
    }
    const upstream = connect(port, host);
    this.track(upstream);
    // One side gone (closed, reset, or the target refused) takes the other with it, during a cut
    // too: that much of a close gets past the DROP rule, and the heal closes a cut connection anyway.
    for (const s of [client, upstream]) s.once('close', () => { client.destroy(); upstream.destroy(); });
    this.forward(client, upstream, 'up');
    this.forward(upstream, client, 'down');
  }

  private forward(from: Socket, to: Socket, dir: Direction): void {
    from.on('data', (chunk: Buffer) => {
      if (this.isCut) { this.lost[dir] += chunk.length; return; }
      this.bytes[dir] += chunk.length;
      const drained = to.write(chunk);
      const rate = this.rate[dir];
      const holdMs = Number.isFinite(rate) ? (chunk.length / rate) * 1000 : 0;
      if (holdMs === 0 && drained) return;
      // Hold the sender for as long as this chunk takes on the slow link, and until the receiver drained.
      from.pause();
      let waits = (holdMs > 0 ? 1 : 0) + (drained ? 0 : 1);
      const go = (): void => { if (--waits === 0) from.resume(); };
      if (holdMs > 0) {
        const t = setTimeout(() => { this.holds.delete(t); go(); }, holdMs);
        this.holds.add(t);
      }
      if (!drained) to.once('drain', go);
    });
    // A FIN passes like a byte: not during a cut.
    from.once('end', () => { if (!this.isCut) to.end(); });
  }
}
