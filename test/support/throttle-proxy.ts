// A TCP relay on 127.0.0.1 standing for a slow WAN link between a primary and its Replica
// server (tests only): what the client sends is let through at most `rate` bytes per second
// (the client's socket paused while over), the answers pass freely. TLS runs end to end through
// it. `setRate(Infinity)` frees the link.
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface ThrottleProxy {
  port: number;
  /** Bytes relayed client → server so far. */
  relayed(): number;
  setRate(bytesPerSecond: number): void;
  close(): Promise<void>;
}

export async function throttleProxy(targetPort: number, rate: number): Promise<ThrottleProxy> {
  let bytes = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.once('close', () => { sockets.delete(s); client.destroy(); upstream.destroy(); });
    }
    upstream.pipe(client);
    client.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      const more = upstream.write(chunk);
      // Over the rate: hold the client for as long as this chunk takes on the slow link (TCP back-pressure does the rest).
      const holdMs = Number.isFinite(rate) ? (chunk.length / rate) * 1000 : 0;
      if (holdMs > 0 || !more) {
        client.pause();
        let waits = (holdMs > 0 ? 1 : 0) + (more ? 0 : 1);
        const go = () => { if (--waits === 0) client.resume(); };
        if (holdMs > 0) setTimeout(go, holdMs);
        if (!more) upstream.once('drain', go);
      }
    });
    client.once('end', () => upstream.end());
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const a = server.address();
  return {
    port: typeof a === 'object' && a ? a.port : 0,
    relayed: () => bytes,
    setRate: (r) => { rate = r; },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };
}
