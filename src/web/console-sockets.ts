// The console WebSockets: GET /api/v1/vms/:vm/vnc carries RFB (binary frames) to and from
// QEMU's VNC unix socket — noVNC in the browser speaks RFB itself, so the bridge only moves
// bytes; GET /api/v1/vms/:vm/serial carries the serial console (text frames). Both refuse
// before the upgrade (401 without a session or token, 404 for an unknown VM, 403 for a
// non-Administrator without Grant-VMConnectAccess to it, 409 when the VM is not running) and close with 1000 when the VM stops.
//
// QEMU's VNC server takes many clients, so each WebSocket gets its own VNC connection. The
// serial chardev takes one client at a time, so one connection per VM is shared by every
// serial WebSocket (a hub): output goes to all of them, input from any of them. Pausing QEMU
// for one slow viewer would stall the others (and the guest's console), so a serial client
// that lets more than SERIAL_MAX_BUFFERED wait for it is dropped instead, with 1008.
import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { httpStatusOf, type ErrorCode } from '../common/index.ts';
import type { Host, VmView } from '../host/index.ts';
import type { Identity } from '../api/roles.ts';
// host/index.ts does not export socket paths yet; vm-paths.ts is the one place they are named.
import { vmPaths } from '../host/vm-paths.ts';

export const CONSOLE_PATH = /^\/api\/v1\/vms\/([^/?#]+)\/(vnc|serial)$/;
/** Serial output already written when a client connects, replayed so the terminal has context. */
const SERIAL_REPLAY_BYTES = 8192;
/** Stop reading from QEMU while this much is queued towards a slow browser. */
const HIGH_WATER = 4 * 1024 * 1024;
/** Serial output that may wait for one WebSocket before it is dropped (close 1008). */
const SERIAL_MAX_BUFFERED = 1024 * 1024;
/** A serial connection nobody joined within this long is closed. */
const IDLE_HUB_MS = 10_000;

export interface ConsoleSocketsOptions {
  host: Host;
  /** Who the upgrade request's token or session (with a same-origin Origin) names. */
  identify(req: IncomingMessage): Identity | undefined;
  /** VMConnect access: Administrators, and users granted this VM. */
  mayConnect(who: Identity, vmId: string): boolean;
}

export class ConsoleSockets {
  private readonly wss = new WebSocketServer({
    noServer: true,
    maxPayload: 1024 * 1024,
    // noVNC offers 'binary' when asked to; plain clients offer nothing.
    handleProtocols: (offered) => (offered.has('binary') ? 'binary' : false),
  });
  private readonly hubs = new Map<string, SerialHub>();
  /** Who opened each socket, to which VM: re-checked when users or grants change. */
  private readonly owners = new WeakMap<WebSocket, { who: Identity; vmId: string }>();
  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    void this.upgrade(req, socket, head);
  };

  constructor(private readonly server: Server, private readonly opts: ConsoleSocketsOptions) {
    server.on('upgrade', this.onUpgrade);
  }

  close(): void {
    this.server.off('upgrade', this.onUpgrade);
    for (const ws of this.wss.clients) ws.close(1001, 'The host daemon is stopping');
    for (const hub of this.hubs.values()) hub.destroy();
    this.wss.close();
  }

  /** Closes (1008) every socket whose user may no longer open that VM's console (Revoke-VMConnectAccess, Remove-VMHostUser). */
  recheck(): void {
    for (const ws of this.wss.clients) {
      const o = this.owners.get(ws);
      if (o && !this.opts.mayConnect(o.who, o.vmId)) ws.close(1008, 'Console access was revoked');
    }
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    const who = this.opts.identify(req);
    if (!who) {
      return refuse(socket, 'UNAUTHORIZED', 'A valid session or token is required (sign in at /, or Authorization: Bearer <token>)');
    }
    const path = (req.url ?? '').split('?')[0]!;
    const m = CONSOLE_PATH.exec(path);
    if (!m) return refuse(socket, 'NOT_FOUND', `No WebSocket endpoint at ${path}`);
    let vm: VmView;
    try {
      vm = this.opts.host.get(decodeURIComponent(m[1]!));
    } catch (e) {
      return refuse(socket, 'NOT_FOUND', (e as Error).message);
    }
    if (!this.opts.mayConnect(who, vm.Id)) {
      return refuse(socket, 'FORBIDDEN', `${who.UserName} has no console access to VM '${vm.Name}' (Grant-VMConnectAccess)`);
    }
    if (vm.State !== 'Running' && vm.State !== 'Paused') {
      return refuse(socket, 'INVALID_STATE', `VM '${vm.Name}' is ${vm.State}: its console is there only while it runs`);
    }
    const paths = vmPaths(this.opts.host.dataDir, vm.Id);
    if (m[2] === 'vnc') {
      const qemu = await connectUnix(paths.vncSocket).catch(() => undefined);
      if (!qemu) return refuse(socket, 'CONSOLE_UNAVAILABLE', `VM '${vm.Name}': its VNC socket does not answer`);
      // The browser may be gone already, or the handshake may be refused: then let QEMU go.
      let bridged = false;
      socket.once('close', () => { if (!bridged) qemu.destroy(); });
      if (socket.destroyed) { qemu.destroy(); return; }
      this.wss.handleUpgrade(req, socket, head, (ws) => { bridged = true; this.owners.set(ws, { who, vmId: vm.Id }); bridgeBinary(ws, qemu); });
      return;
    }
    let hub = this.hubs.get(vm.Id);
    if (!hub) {
      const qemu = await connectUnix(paths.serialSocket).catch(() => undefined);
      if (!qemu) return refuse(socket, 'CONSOLE_UNAVAILABLE', `VM '${vm.Name}': its serial socket does not answer`);
      // Another upgrade may have made the hub while this one waited for the socket.
      hub = this.hubs.get(vm.Id);
      if (hub) qemu.destroy();
      else {
        const made = new SerialHub(qemu, () => { if (this.hubs.get(vm.Id) === made) this.hubs.delete(vm.Id); });
        this.hubs.set(vm.Id, made);
        hub = made;
      }
    }
    const replay = await this.opts.host.serialLog(vm.Id, SERIAL_REPLAY_BYTES).catch(() => '');
    const joined = hub;
    this.wss.handleUpgrade(req, socket, head, (ws) => { this.owners.set(ws, { who, vmId: vm.Id }); joined.add(ws, replay); });
  }
}

function connectUnix(path: string): Promise<Socket> {
  return new Promise((ok, fail) => {
    const s = connect(path);
    s.once('connect', () => { s.off('error', fail); ok(s); });
    s.once('error', fail);
  });
}

function refuse(socket: Duplex, code: ErrorCode, message: string): void {
  const status = httpStatusOf(code);
  const body = JSON.stringify({ code, message });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

const STOPPED = 'The virtual machine stopped';

/** RFB bytes both ways, with back-pressure on both sides. */
function bridgeBinary(ws: WebSocket, qemu: Socket): void {
  let queued = 0;
  qemu.on('data', (chunk: Buffer) => {
    queued += chunk.length;
    if (queued > HIGH_WATER) qemu.pause();
    ws.send(chunk, { binary: true }, () => {
      queued -= chunk.length;
      if (queued <= HIGH_WATER && qemu.isPaused()) qemu.resume();
    });
  });
  ws.on('message', (data: RawData) => {
    if (!qemu.write(toBuffer(data))) {
      ws.pause();
      qemu.once('drain', () => ws.resume());
    }
  });
  qemu.on('error', () => qemu.destroy());
  qemu.on('close', () => { if (ws.readyState === ws.OPEN) ws.close(1000, STOPPED); });
  ws.on('close', () => qemu.destroy());
  ws.on('error', () => ws.terminate());
}

/** One serial connection to QEMU shared by every serial WebSocket of a VM. */
class SerialHub {
  private readonly clients = new Set<WebSocket>();
  private readonly decoder = new StringDecoder('utf8');

  constructor(private readonly qemu: Socket, private readonly gone: () => void) {
    // Made for a client whose handshake then failed: do not hold QEMU's only serial slot.
    setTimeout(() => { if (this.clients.size === 0) this.destroy(); }, IDLE_HUB_MS).unref();
    qemu.on('data', (chunk: Buffer) => {
      const text = this.decoder.write(chunk);
      if (text) for (const ws of this.clients) this.send(ws, text);
    });
    qemu.on('error', () => qemu.destroy());
    qemu.on('close', () => {
      this.gone();
      for (const ws of this.clients) ws.close(1000, STOPPED);
      this.clients.clear();
    });
  }

  add(ws: WebSocket, replay: string): void {
    if (this.qemu.destroyed) { ws.close(1000, STOPPED); return; }
    this.clients.add(ws);
    if (replay) this.send(ws, replay);
    ws.on('message', (data: RawData) => { this.qemu.write(toBuffer(data)); });
    ws.on('error', () => ws.terminate());
    ws.on('close', () => {
      this.clients.delete(ws);
      // Let go of QEMU's only serial slot when nobody watches.
      if (this.clients.size === 0) this.destroy();
    });
  }

  destroy(): void {
    this.qemu.destroy();
  }

  /** To one client, unless it stopped reading: then it is dropped (its close handler lets QEMU go if it was the last). */
  private send(ws: WebSocket, text: string): void {
    if (ws.bufferedAmount > 0 && ws.bufferedAmount + Buffer.byteLength(text) > SERIAL_MAX_BUFFERED) {
      this.clients.delete(ws);
      // The close frame queues behind what the client did not read; ws ends the socket if
      // the closing handshake does not complete in time.
      ws.close(1008, 'Console client too slow: it stopped reading');
      return;
    }
    ws.send(text);
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
