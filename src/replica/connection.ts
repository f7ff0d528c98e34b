// A primary's connection to a Replica server: TLS with this host's replication certificate as
// the client certificate, the server's certificate checked against the store's trusted CAs and
// ReplicaServerName (Node's checkServerIdentity: a DNS or IP subject alternative name). The
// server's answers are read concurrently with what we send, so an `error` it sends mid-stream
// (a refusal, a disk that could not be written) is what the caller sees, not a broken pipe.
import { connect, type TLSSocket } from 'node:tls';
import { VmhostError } from '../common/index.ts';
import type { StoredCertificate } from './cert-store.ts';
import { readFrames, sendFrame, WIRE_VERSION, type Frame, type Op } from './wire.ts';

export interface Peer { server: string; port: number; certificate: StoredCertificate; trusted: string[] }

function failed(message: string, peer: Peer, cause?: unknown): VmhostError {
  return new VmhostError('REPLICATION_FAILED', message, { server: peer.server, port: peer.port }, { cause });
}

/** The error a refusal frame stands for: the server's code when it is ours, its words always. */
function refusal(f: Extract<Frame, { t: 'error' }>, peer: Peer): VmhostError {
  const code = f.code === 'REPLICATION_UNAUTHORIZED' || f.code === 'REPLICATION_NOT_ENABLED' || f.code === 'REPLICATION_PROTOCOL' ? f.code : 'REPLICATION_FAILED';
  return new VmhostError(code, `the Replica server ${peer.server}:${peer.port} refused: ${f.message}`, { server: peer.server, port: peer.port, serverCode: f.code });
}

export class ReplicaConnection {
  private readonly replies: AsyncIterator<{ frame: Frame }>;
  private pending: Promise<IteratorResult<{ frame: Frame }>> | undefined;
  /** The server's `ok` to the hello (a reverse's says how replication starts). */
  welcome: Extract<Frame, { t: 'ok' }> | undefined;

  private constructor(private readonly socket: TLSSocket, private readonly peer: Peer) {
    this.replies = readFrames(socket as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  /** Connect, say hello and wait for `ok`; a refusal or an untrusted server throws with the reason. */
  static async open(peer: Peer, op: Op, vm?: { id: string; name: string }, basedOn?: number): Promise<ReplicaConnection> {
    const socket = await new Promise<TLSSocket>((resolve, reject) => {
      const s = connect({
        host: peer.server, port: peer.port, cert: peer.certificate.cert, key: peer.certificate.key, ca: peer.trusted,
        ...(/^[\d.]+$|:/.test(peer.server) ? {} : { servername: peer.server })
      });
      s.once('secureConnect', () => {
        // Later socket errors surface as a failed write or an ended reply stream, never as an unhandled 'error' event.
        s.on('error', () => undefined);
        resolve(s);
      });
      s.once('error', (e: NodeJS.ErrnoException) => {
        const tlsCodes = /CERT|SELF_SIGNED|UNABLE_TO|ERR_TLS_CERT_ALTNAME/;
        reject(tlsCodes.test(e.code ?? '')
          ? new VmhostError('REPLICATION_UNAUTHORIZED', `the Replica server ${peer.server}:${peer.port} presented a certificate this host does not trust: ${e.message}`, { server: peer.server, port: peer.port }, { cause: e })
          : failed(`cannot reach the Replica server ${peer.server}:${peer.port}: ${e.message}`, peer, e));
      });
    });
    socket.setNoDelay(true);
    const c = new ReplicaConnection(socket, peer);
    try {
      await c.send({ t: 'hello', v: WIRE_VERSION, op, ...(vm ? { vmId: vm.id, vmName: vm.name } : {}), ...(basedOn !== undefined ? { basedOn } : {}) });
      c.welcome = await c.expect('ok');
      return c;
    } catch (e) {
      c.close();
      throw e;
    }
  }

  /** Send a frame; an answer already waiting (an error) is thrown instead. */
  async send(f: Frame, payload?: Uint8Array): Promise<void> {
    try {
      await sendFrame(this.socket, f, payload);
    } catch (e) {
      throw await this.answerOr(e);
    }
  }

  /** The next answer, which must be `type`; an `error` frame throws the server's reason. */
  async expect<T extends Frame['t']>(type: T): Promise<Extract<Frame, { t: T }>> {
    let r: IteratorResult<{ frame: Frame }>;
    try {
      r = await this.next();
    } catch (e) {
      throw failed(`the Replica server ${this.peer.server}:${this.peer.port} broke the stream: ${(e as Error).message}`, this.peer, e);
    }
    if (r.done) throw failed(`the Replica server ${this.peer.server}:${this.peer.port} closed the connection before answering`, this.peer);
    const f = r.value.frame;
    if (f.t === 'error') throw refusal(f, this.peer);
    if (f.t !== type) throw failed(`the Replica server answered '${f.t}' where '${type}' was due`, this.peer);
    this.pending = undefined;
    return f as Extract<Frame, { t: T }>;
  }

  /** Whether another point can go over it: open both ways, no answer left unread (a kept continuous connection). */
  get usable(): boolean {
    return !this.socket.destroyed && this.socket.writable && !this.socket.readableEnded && this.pending === undefined;
  }

  /** Stop early: the server drops what it got of an unfinished point. */
  close(): void {
    this.socket.destroy();
  }

  private next(): Promise<IteratorResult<{ frame: Frame }>> {
    this.pending ??= this.replies.next();
    return this.pending;
  }

  /** After a failed write: the server's error frame if it sent one, else the write's error. */
  private async answerOr(e: unknown): Promise<VmhostError> {
    const r = await Promise.race([this.next().catch(() => undefined), new Promise<undefined>((res) => setTimeout(() => res(undefined), 1000).unref())]);
    if (r && !r.done && r.value.frame.t === 'error') return refusal(r.value.frame, this.peer);
    return failed(`sending to the Replica server ${this.peer.server}:${this.peer.port} failed: ${(e as Error).message}`, this.peer, e);
  }
}
