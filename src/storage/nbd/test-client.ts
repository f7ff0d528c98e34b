// A small NBD client for tests (and the crash-test writer): fixed newstyle handshake with
// structured replies and base:allocation, then pipelined requests matched by handle.
// Not used by the server; kept beside it so protocol tests need no external tool.
import { createConnection, type Socket } from 'node:net';
import { SocketReader } from './socket-reader.ts';
import {
  NBDMAGIC, IHAVEOPT, OPT_REPLY_MAGIC, FLAG_C_FIXED_NEWSTYLE, FLAG_C_NO_ZEROES, OPT_GO, OPT_STRUCTURED_REPLY, OPT_SET_META_CONTEXT,
  REP_ACK, REP_INFO, REP_META_CONTEXT, INFO_EXPORT, INFO_BLOCK_SIZE, REQUEST_MAGIC, SIMPLE_REPLY_MAGIC, STRUCTURED_REPLY_MAGIC,
  CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM, CMD_WRITE_ZEROES, CMD_BLOCK_STATUS, CMD_FLAG_FUA, CMD_FLAG_NO_HOLE,
  REPLY_FLAG_DONE, REPLY_TYPE_OFFSET_DATA, REPLY_TYPE_OFFSET_HOLE, REPLY_TYPE_BLOCK_STATUS, BASE_ALLOCATION,
} from './protocol.ts';

export class NbdError extends Error {
  constructor(readonly errno: number, message: string) {
    super(`NBD error ${errno}: ${message}`);
  }
}

export interface ExportFacts {
  size: number;
  flags: number;
  minimumBlockSize: number;
  preferredBlockSize: number;
  maximumBlockSize: number;
  contextId: number;
}

interface Pending {
  type: number;
  offset: number;
  length: number;
  data?: Buffer;
  extents: Array<{ length: number; flags: number }>;
  error?: NbdError;
  resolve: (v: Pending) => void;
  reject: (e: Error) => void;
}

export function optionPacket(option: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.allocUnsafe(16);
  h.writeBigUInt64BE(IHAVEOPT, 0);
  h.writeUInt32BE(option, 8);
  h.writeUInt32BE(data.length, 12);
  return Buffer.concat([h, data]);
}

export function requestPacket(type: number, flags: number, handle: number, offset: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(28);
  b.writeUInt32BE(REQUEST_MAGIC, 0);
  b.writeUInt16BE(flags, 4);
  b.writeUInt16BE(type, 6);
  b.writeUInt32BE(0, 8);
  b.writeUInt32BE(handle, 12);
  b.writeBigUInt64BE(BigInt(offset), 16);
  b.writeUInt32BE(length, 24);
  return b;
}

function str32(s: string): Buffer {
  const t = Buffer.from(s, 'utf8');
  const n = Buffer.allocUnsafe(4);
  n.writeUInt32BE(t.length, 0);
  return Buffer.concat([n, t]);
}

export async function connectSocket(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

export class NbdTestClient {
  /** OFFSET_HOLE chunks received (reads the server answered as zeros without data). */
  holeChunks = 0;
  private next = 1;
  private pending = new Map<number, Pending>();
  private failure: Error | undefined;

  private constructor(readonly socket: Socket, private readonly reader: SocketReader, readonly facts: ExportFacts) {
    void this.readLoop();
  }

  static async connect(path: string, exportName = ''): Promise<NbdTestClient> {
    const socket = await connectSocket(path);
    const reader = new SocketReader(socket);
    const greet = await reader.take(18);
    if (greet.readBigUInt64BE(0) !== NBDMAGIC || greet.readBigUInt64BE(8) !== IHAVEOPT) throw new Error('bad greeting');
    const cf = Buffer.allocUnsafe(4);
    cf.writeUInt32BE(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES, 0);
    socket.write(cf);
    const facts: ExportFacts = { size: 0, flags: 0, minimumBlockSize: 1, preferredBlockSize: 4096, maximumBlockSize: 32 << 20, contextId: 0 };
    const replies = async (): Promise<Array<{ type: number; data: Buffer }>> => {
      const out: Array<{ type: number; data: Buffer }> = [];
      for (;;) {
        const h = await reader.take(20);
        if (h.readBigUInt64BE(0) !== OPT_REPLY_MAGIC) throw new Error('bad option reply magic');
        const type = h.readUInt32BE(12);
        const len = h.readUInt32BE(16);
        const data = len ? Buffer.from(await reader.take(len)) : Buffer.alloc(0);
        out.push({ type, data });
        if (type === REP_ACK || type >= 0x80000000) return out;
      }
    };
    socket.write(optionPacket(OPT_STRUCTURED_REPLY));
    await replies();
    const q = Buffer.concat([str32(exportName), Buffer.from([0, 0, 0, 1]), str32(BASE_ALLOCATION)]);
    socket.write(optionPacket(OPT_SET_META_CONTEXT, q));
    for (const r of await replies()) if (r.type === REP_META_CONTEXT) facts.contextId = r.data.readUInt32BE(0);
    const go = Buffer.concat([str32(exportName), Buffer.from([0, 1, 0, INFO_BLOCK_SIZE])]);
    socket.write(optionPacket(OPT_GO, go));
    for (const r of await replies()) {
      if (r.type >= 0x80000000) throw new Error(`NBD_OPT_GO refused (0x${r.type.toString(16)}): ${r.data.toString()}`);
      if (r.type !== REP_INFO) continue;
      const t = r.data.readUInt16BE(0);
      if (t === INFO_EXPORT) {
        facts.size = Number(r.data.readBigUInt64BE(2));
        facts.flags = r.data.readUInt16BE(10);
      } else if (t === INFO_BLOCK_SIZE) {
        facts.minimumBlockSize = r.data.readUInt32BE(2);
        facts.preferredBlockSize = r.data.readUInt32BE(6);
        facts.maximumBlockSize = r.data.readUInt32BE(10);
      }
    }
    return new NbdTestClient(socket, reader, facts);
  }

  private async readLoop(): Promise<void> {
    try {
      for (;;) {
        const m = (await this.reader.take(4)).readUInt32BE(0);
        if (m === SIMPLE_REPLY_MAGIC) {
          const h = await this.reader.take(12);
          const err = h.readUInt32BE(0);
          const p = this.take(h.readUInt32BE(8));
          if (err) p.error = new NbdError(err, 'simple reply');
          this.finish(p);
        } else if (m === STRUCTURED_REPLY_MAGIC) {
          const h = await this.reader.take(16);
          const flags = h.readUInt16BE(0);
          const type = h.readUInt16BE(2);
          const handle = h.readUInt32BE(8);
          const len = h.readUInt32BE(12);
          const payload = len ? Buffer.from(await this.reader.take(len)) : Buffer.alloc(0);
          const p = this.pending.get(handle);
          if (!p) throw new Error(`reply for unknown handle ${handle}`);
          if (type === REPLY_TYPE_OFFSET_DATA) {
            const off = Number(payload.readBigUInt64BE(0));
            payload.copy(p.data!, off - p.offset, 8);
          } else if (type === REPLY_TYPE_OFFSET_HOLE) {
            const at = Number(payload.readBigUInt64BE(0)) - p.offset;
            p.data!.fill(0, at, at + payload.readUInt32BE(8));
            this.holeChunks++;
          } else if (type === REPLY_TYPE_BLOCK_STATUS) {
            for (let i = 4; i < payload.length; i += 8) p.extents.push({ length: payload.readUInt32BE(i), flags: payload.readUInt32BE(i + 4) });
          } else if (type & 0x8000) {
            const ml = payload.readUInt16BE(4);
            p.error = new NbdError(payload.readUInt32BE(0), payload.toString('utf8', 6, 6 + ml));
          }
          if (flags & REPLY_FLAG_DONE) {
            this.pending.delete(handle);
            this.finish(p);
          }
        } else throw new Error(`bad reply magic 0x${m.toString(16)}`);
      }
    } catch (e) {
      this.failure = e as Error;
      for (const p of this.pending.values()) p.reject(this.failure);
      this.pending.clear();
    }
  }

  private take(handle: number): Pending {
    const p = this.pending.get(handle);
    if (!p) throw new Error(`reply for unknown handle ${handle}`);
    this.pending.delete(handle);
    return p;
  }

  private finish(p: Pending): void {
    if (p.error) p.reject(p.error);
    else p.resolve(p);
  }

  private request(type: number, flags: number, offset: number, length: number, payload?: Uint8Array): Promise<Pending> {
    if (this.failure) return Promise.reject(this.failure);
    const handle = this.next++;
    return new Promise((resolve, reject) => {
      const p: Pending = { type, offset, length, extents: [], resolve, reject };
      if (type === CMD_READ) p.data = Buffer.alloc(length);
      this.pending.set(handle, p);
      this.socket.write(requestPacket(type, flags, handle, offset, length));
      if (payload) this.socket.write(payload);
    });
  }

  async read(offset: number, length: number): Promise<Buffer> {
    return (await this.request(CMD_READ, 0, offset, length)).data!;
  }
  async write(offset: number, data: Uint8Array, opts: { fua?: boolean } = {}): Promise<void> {
    await this.request(CMD_WRITE, opts.fua ? CMD_FLAG_FUA : 0, offset, data.length, data);
  }
  async flush(): Promise<void> {
    await this.request(CMD_FLUSH, 0, 0, 0);
  }
  async trim(offset: number, length: number): Promise<void> {
    await this.request(CMD_TRIM, 0, offset, length);
  }
  async writeZeroes(offset: number, length: number, opts: { noHole?: boolean } = {}): Promise<void> {
    await this.request(CMD_WRITE_ZEROES, opts.noHole ? CMD_FLAG_NO_HOLE : 0, offset, length);
  }
  async blockStatus(offset: number, length: number): Promise<Array<{ length: number; flags: number }>> {
    return (await this.request(CMD_BLOCK_STATUS, 0, offset, length)).extents;
  }
  /** Send a raw request (misuse tests). */
  raw(type: number, flags: number, offset: number, length: number, payload?: Uint8Array): Promise<unknown> {
    return this.request(type, flags, offset, length, payload);
  }

  async disconnect(): Promise<void> {
    if (!this.socket.destroyed) {
      this.socket.write(requestPacket(CMD_DISC, 0, 0, 0, 0));
      this.socket.end();
      await new Promise<void>((r) => this.socket.once('close', () => r()));
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}
