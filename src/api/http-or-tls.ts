// A loopback daemon's API port speaks both: plain HTTP for the local CLI and the web console
// (the README's quick start, http://127.0.0.1:8470), and TLS for other daemons — a move's
// prepare, commit and outcome calls carry its ticket and secret, which must not cross even
// loopback in clear (any local user with a capture on `lo` would read them). One port, told
// apart by the first byte a client sends: 0x16 opens every TLS handshake (a TLS record of type
// handshake), and no HTTP request starts with it. The certificate is the one the daemon makes
// for a move's stream listeners (tls-certificate.ts), made when the first TLS client arrives,
// so a loopback daemon nobody moves a VM to never makes one. A daemon off loopback is HTTPS
// only (server.ts), never this.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import type { TlsIdentity } from './tls-certificate.ts';

const TLS_HANDSHAKE_RECORD = 0x16;
/** From the connection to a request's first byte (plain) or the handshake's end (TLS). */
const FIRST_BYTES_MS = 10_000;

/** An HTTP server whose connections may also open with TLS, then served alike inside it. `firstBytesMs`: see FIRST_BYTES_MS. */
export function httpOrTlsServer(handler: (req: IncomingMessage, res: ServerResponse) => void, identity: () => Promise<TlsIdentity>, firstBytesMs = FIRST_BYTES_MS): Server {
  const server = createServer(handler);
  // http.Server's own connection handler, given the plain socket or the TLS one (as https.Server does).
  const serveHttp = server.listeners('connection')[0] as (socket: Socket) => void;
  server.removeAllListeners('connection');
  let context: Promise<SecureContext> | undefined;
  const secureContext = (): Promise<SecureContext> => (context ??= identity().then((id) => createSecureContext({ key: id.key, cert: id.cert }))
    .catch((e: unknown) => { context = undefined; throw e; }));
  // Until a socket is handed to http.Server, the server does not know it: a client that connects
  // and says nothing (or stalls its handshake) would hold close() — and so the daemon's stop —
  // forever. So each has a deadline, and closing every connection (fastify's forceCloseConnections) closes these too.
  const pending = new Set<Socket>();
  const closeAllConnections = server.closeAllConnections.bind(server);
  server.closeAllConnections = () => {
    for (const s of pending) s.destroy();
    closeAllConnections();
  };
  const served = (raw: Socket, socket: Socket): void => {
    for (const s of [raw, socket]) {
      pending.delete(s);
      s.setTimeout(0); // http.Server keeps its own timeouts from here
    }
    serveHttp.call(server, socket);
  };
  const deadline = (s: Socket): void => {
    pending.add(s);
    s.once('close', () => pending.delete(s)).setTimeout(firstBytesMs, () => s.destroy());
  };
  server.on('connection', (socket: Socket) => {
    socket.on('error', () => socket.destroy());
    deadline(socket);
    const peek = (): void => {
      const first = socket.read(1) as Buffer | null;
      if (first === null) {
        socket.once('readable', peek);
        return;
      }
      socket.unshift(first);
      if (first[0] !== TLS_HANDSHAKE_RECORD) {
        served(socket, socket);
        return;
      }
      secureContext().then((ctx) => {
        const tls = new TLSSocket(socket, { isServer: true, secureContext: ctx, ALPNProtocols: ['http/1.1'] });
        // Until the handshake ends nobody else watches it: a client that leaves (one that refused
        // our certificate) ends it here. The server's half-open setting has passed to it.
        const handshaking = (): void => { tls.destroy(); };
        tls.on('error', () => tls.destroy()).once('end', handshaking);
        // The TLS socket took the raw one's handle, so the raw socket never closes by itself and
        // the server would count it open forever (its close() never calling back).
        tls.once('close', () => socket.destroy());
        deadline(tls);
        tls.once('secure', () => {
          tls.off('end', handshaking);
          served(socket, tls);
        });
      }, () => socket.destroy());
    };
    peek();
  });
  return server;
}
