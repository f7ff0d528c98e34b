// Test support: a TCP link that can be cut like a firewall's DROP rule. It listens on a free
// loopback port and forwards each connection to `target`. `cut()` makes every byte vanish in both
// directions — on open connections and on new ones, which are accepted and then hear nothing —
// so a client sees what a dropped packet gives it: a request that hangs until its own timeout,
// not a refusal it could act on at once. `heal()` lets new connections through again and closes
// the ones that were cut (bytes were lost in the middle of their streams; real TCP would have
// retransmitted them, a proxy cannot, so the endpoints reconnect instead).
import { connect, createServer, type Server, type Socket } from 'node:net';

export class FaultLink {
  private isCut = false;
  private readonly open = new Set<Socket>();
  private readonly cutOpen = new Set<Socket>();

  private constructor(private readonly server: Server, readonly url: string) {}

  /** A link to `target` (host:port); `url` is the link's own address with the target's scheme. */
  static async to(targetUrl: string): Promise<FaultLink> {
    const target = new URL(targetUrl);
    const server = createServer();
    await new Promise<void>((ok, fail) => { server.once('error', fail); server.listen(0, '127.0.0.1', ok); });
    const port = (server.address() as { port: number }).port;
    const link = new FaultLink(server, `${target.protocol}//127.0.0.1:${port}`);
    server.on('connection', (client) => link.accept(client, target));
    return link;
  }

  private accept(client: Socket, target: URL): void {
    client.on('error', () => undefined);
    if (this.isCut) {
      // Accepted, then silence: what a client behind a DROP rule sees once a SYN got through.
      client.resume();
      this.cutOpen.add(client);
      client.once('close', () => this.cutOpen.delete(client));
      return;
    }
    const server = connect(Number(target.port), target.hostname);
    server.on('error', () => client.destroy());
    client.on('close', () => server.destroy());
    server.on('close', () => client.destroy());
    const pass = (to: Socket) => (b: Buffer): void => { if (!this.isCut) to.write(b); };
    client.on('data', pass(server));
    server.on('data', pass(client));
    for (const s of [client, server]) {
      this.open.add(s);
      s.once('close', () => { this.open.delete(s); this.cutOpen.delete(s); });
    }
  }

  cut(): void {
    this.isCut = true;
    for (const s of this.open) this.cutOpen.add(s);
  }

  heal(): void {
    this.isCut = false;
    for (const s of this.cutOpen) s.destroy();
    this.cutOpen.clear();
  }

  async close(): Promise<void> {
    for (const s of [...this.open, ...this.cutOpen]) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}
