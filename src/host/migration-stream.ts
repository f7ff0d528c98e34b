// QEMU's migration stream between two daemons (TCPIP's; see the end of this comment for the
// multifd options). Through the relay neither QEMU talks TCP: the source
// QEMU migrates to a unix socket its daemon listens on (a fresh dir of QEMU's group), the
// daemon relays each connection (multifd opens several) over TLS to the destination daemon,
// which checks the move's secret (the first SECRET_BYTES bytes of every connection) and relays
// the rest to the unix socket its incoming QEMU listens on (a fresh dir QEMU's group may write).
// The destination's listener presents its daemon's certificate; the source accepts only the one
// whose fingerprint the destination answered over the authenticated prepare, and writes the
// secret only then: a man in the middle gets neither the secret nor the guest's memory.
// That is TCPIP's path. The multifd options go over QEMU's own TLS straight between the QEMUs
// (migration-tls.ts); `boundRelay` only passes such a stream on when it must leave from an
// address the kernel's route would not pick.
import { timingSafeEqual } from 'node:crypto';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import { createSocket } from 'node:dgram';
import { createConnection, createServer, isIPv6, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { createSecureContext, TLSSocket } from 'node:tls';
import { VmhostError } from '../common/index.ts';
import { connectPinned, pinnedTo, type TlsIdentity } from '../common/pinned-tls.ts';
import { shareSocketWithGroup } from '../common/socket-group.ts';

export const SECRET_BYTES = 32;
const HANDSHAKE_MS = 10_000;
/** QEMU closes its end once the stream is done (or failed): the relay's sockets end right after. */
const DRAIN_MS = 5_000;

/** A private dir for one move's socket; `writable` lets QEMU's group create the socket in it. */
export async function moveSocketDir(under: string, group: number | undefined, writable: boolean): Promise<string> {
  const dir = await mkdtemp(join(under, 'mig-'));
  if (group !== undefined) {
    await chown(dir, process.getuid?.() ?? 0, group);
    await chmod(dir, writable ? 0o770 : 0o710);
  }
  return dir;
}

/**
 * Each way piped: an end passes on once everything read before it has been written. Only an
 * error tears both down at once — destroying the other side when one closes dropped the bytes
 * still queued in it, the tail of a multifd channel, and the destination QEMU hung waiting
 * for them (its monitor unanswered; the daemon saw it go away while loading).
 */
function splice(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  const fail = (): void => { a.destroy(); b.destroy(); };
  a.on('error', fail).on('close', (hadError) => { if (hadError) fail(); });
  b.on('error', fail).on('close', (hadError) => { if (hadError) fail(); });
}

/** `close`: no new connection; the open ones get DRAIN_MS to finish passing on what they hold, then are cut. */
export interface Relay { readonly uri: string; readonly bytes: () => number; close(): Promise<void> }

/** Where the source relay sends: the destination's listener and the certificate fingerprint it answered at prepare. */
export interface RelayTarget { host: string; port: number; fingerprint: string; localAddress?: string }

/**
 * Source side: QEMU connects to `unix:<dir>/out.sock`; each connection goes to `to` over TLS
 * (from `to.localAddress` when given), its certificate checked, then prefixed with the secret.
 * `refused` is why a connection could not be opened (the first such reason): QEMU only sees its
 * socket closed, and the move's error should say why.
 */
export async function sourceRelay(dir: string, group: number | undefined, to: RelayTarget, secret: Buffer): Promise<Relay & { refused(): Error | undefined }> {
  const path = join(dir, 'out.sock');
  const open = new Set<Socket>();
  let bytes = 0;
  let refused: Error | undefined;
  const where = `the destination's migration stream listener ${to.host}:${to.port}`;
  // QEMU 7.2's destination takes the first connection for the main channel and the next ones
  // for multifd: each TLS connection opens only once the one before it has.
  let previous = Promise.resolve();
  const server = createServer((q) => {
    open.add(q);
    // QEMU's first bytes wait in its socket until the secret is queued ahead of them.
    q.pause();
    previous = previous.then(async () => {
      let t: Socket;
      try {
        t = await connectPinned({ host: to.host, port: to.port, localAddress: to.localAddress }, pinnedTo(to.fingerprint, where));
      } catch (e) {
        refused ??= e instanceof VmhostError ? e : new VmhostError('MIGRATION_FAILED', `${where} could not be reached: ${(e as Error).message}`, { host: to.host, port: to.port }, { cause: e });
        q.destroy();
        return;
      }
      open.add(t);
      if (q.destroyed) { t.destroy(); return; }
      t.setNoDelay(true);
      t.write(secret);
      q.on('data', (b: Buffer) => { bytes += b.length; });
      splice(q, t);
      // The destination gone without an error (its daemon killed: the kernel closes the
      // connection with a FIN) while QEMU still sends: nothing will read QEMU's side again, and it
      // waited forever with its socket full (Move-VM hung at "0 MiB sent"). QEMU then fails its
      // migration and the VM runs on here. A QEMU that has ended its side keeps the tail flowing.
      t.on('close', () => { if (!q.readableEnded) q.destroy(); });
      q.resume();
    });
  });
  await listen(server, path);
  await shareSocketWithGroup(path, group);
  return {
    uri: `unix:${path}`,
    bytes: () => bytes,
    refused: () => refused,
    close: () => closeAll(server, open, dir),
  };
}

/**
 * A stream QEMU carries over its own TLS (multifd options, migration-tls.ts) that must leave from
 * `to.localAddress`, which the kernel's route would not pick: QEMU cannot bind a local address,
 * so it connects to `unix:<dir>/out.sock` and each connection is passed on as it is, from there.
 */
export async function boundRelay(dir: string, group: number | undefined, to: { host: string; port: number; localAddress: string }): Promise<Relay> {
  const path = join(dir, 'out.sock');
  const open = new Set<Socket>();
  let bytes = 0;
  const server = createServer((q) => {
    const t = createConnection({ host: to.host, port: to.port, localAddress: to.localAddress });
    open.add(q).add(t);
    t.setNoDelay(true);
    q.on('data', (b: Buffer) => { bytes += b.length; });
    splice(q, t);
    t.on('close', () => { if (!q.readableEnded) q.destroy(); }); // as in sourceRelay: QEMU must not wait on a dead peer
  });
  await listen(server, path);
  await shareSocketWithGroup(path, group);
  return { uri: `unix:${path}`, bytes: () => bytes, close: () => closeAll(server, open, dir) };
}

/** The address the kernel's route sends from to reach `address` (no packet is sent). */
export async function routeSource(address: string): Promise<string> {
  const s = createSocket(isIPv6(address) ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((ok, fail) => { s.once('error', fail); s.connect(9, address, () => ok()); });
    return s.address().address;
  } finally {
    s.close();
  }
}

/**
 * Destination side: a TLS listener on `host` (port chosen by the kernel) presenting `identity`;
 * a connection that opens with `secret` is relayed to QEMU's `unix:` socket, anything else is dropped.
 */
export async function destinationRelay(host: string, identity: TlsIdentity, qemuSocket: string, secret: Buffer, dir: string): Promise<Relay & { port: number }> {
  const open = new Set<Socket>();
  let bytes = 0;
  // In accept order, one after the other (see sourceRelay): the main channel reaches QEMU first.
  // The turn is taken on accept, not once the secret has arrived: the secrets of two
  // connections may arrive out of order, and QEMU 7.2 takes whichever comes first as the main
  // channel. A connection that fails its handshake (TLS, then the secret) gives its turn up at
  // once; one that says nothing holds it until HANDSHAKE_MS. So TLS is put on each accepted
  // socket here rather than by a TLS server, which would hand connections over as their TLS
  // handshakes end, in any order.
  let previous = Promise.resolve();
  const context = createSecureContext({ key: identity.key, cert: identity.cert });
  const server = createServer((raw) => {
    open.add(raw);
    raw.setNoDelay(true);
    const t = new TLSSocket(raw, { isServer: true, secureContext: context });
    open.add(t);
    t.on('error', () => t.destroy());
    const authenticated = handshake(t, secret);
    previous = previous.then(() => authenticated.then((rest) => rest && new Promise<void>((connected) => {
      const q = createConnection(qemuSocket, () => {
        if (rest.length > 0) q.write(rest);
        t.on('data', (x: Buffer) => { bytes += x.length; });
        splice(t, q);
        t.resume();
        connected();
      });
      open.add(q);
      q.on('error', () => { t.destroy(); connected(); });
    })));
  });
  await new Promise<void>((ok, fail) => { server.once('error', fail); server.listen(0, host, () => ok()); });
  const port = (server.address() as { port: number }).port;
  return { uri: `unix:${qemuSocket}`, port, bytes: () => bytes, close: () => closeAll(server, open, dir) };
}

/** The connection's first SECRET_BYTES bytes checked: what came after them (the connection paused), or undefined (it is destroyed). */
function handshake(t: Socket, secret: Buffer): Promise<Buffer | undefined> {
  return new Promise((done) => {
    let head = Buffer.alloc(0);
    const fail = (): void => { clearTimeout(timer); t.off('data', onData).off('close', fail); t.destroy(); done(undefined); };
    const timer = setTimeout(fail, HANDSHAKE_MS);
    const onData = (b: Buffer): void => {
      head = Buffer.concat([head, b]);
      if (head.length < SECRET_BYTES) return;
      t.off('data', onData);
      t.off('close', fail);
      t.pause();
      clearTimeout(timer);
      if (!timingSafeEqual(head.subarray(0, SECRET_BYTES), secret)) { fail(); return; }
      done(head.subarray(SECRET_BYTES));
    };
    t.on('data', onData);
    t.once('close', fail);
  });
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((ok, fail) => { server.once('error', fail); server.listen(path, () => ok()); });
}

async function closeAll(server: Server, open: Set<Socket>, dir: string): Promise<void> {
  // The server's close callback runs once every connection it accepted has closed.
  const closed = new Promise<void>((r) => server.close(() => r()));
  const cut = setTimeout(() => { for (const s of open) s.destroy(); }, DRAIN_MS);
  await closed;
  clearTimeout(cut);
  for (const s of open) s.destroy();
  await rm(dir, { recursive: true, force: true });
}
