// Fixed newstyle handshake (server side): greeting, client flags, then option haggling —
// EXPORT_NAME, ABORT, LIST, STARTTLS (refused: unix sockets only), INFO, GO,
// STRUCTURED_REPLY, LIST/SET_META_CONTEXT (base:allocation). Unknown options get
// NBD_REP_ERR_UNSUP; malformed ones NBD_REP_ERR_INVALID; a wrong magic, unknown client flag
// or an oversized option ends the session. Returns what transmission needs, or undefined
// when the client aborted.
import type { Socket } from 'node:net';
import type { SocketReader } from './socket-reader.ts';
import {
  NBDMAGIC, IHAVEOPT, OPT_REPLY_MAGIC, FLAG_FIXED_NEWSTYLE, FLAG_NO_ZEROES, FLAG_C_FIXED_NEWSTYLE, FLAG_C_NO_ZEROES,
  OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS, OPT_INFO, OPT_GO, OPT_STRUCTURED_REPLY, OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT,
  REP_ACK, REP_SERVER, REP_INFO, REP_META_CONTEXT, REP_ERR_UNSUP, REP_ERR_POLICY, REP_ERR_INVALID, REP_ERR_UNKNOWN,
  INFO_EXPORT, INFO_NAME, INFO_DESCRIPTION, INFO_BLOCK_SIZE, BASE_ALLOCATION, BASE_ALLOCATION_ID, MAX_OPTION_LENGTH, MAX_PAYLOAD,
  TF_HAS_FLAGS, TF_READ_ONLY, TF_SEND_FLUSH, TF_SEND_FUA, TF_SEND_TRIM, TF_SEND_WRITE_ZEROES, TF_SEND_DF, TF_CAN_MULTI_CONN,
} from './protocol.ts';

/** What the handshake needs to know about an export. */
export interface ExportInfo {
  readonly name: string;
  readonly description: string;
  readonly size: number;
  readonly readOnly: boolean;
  readonly minimumBlockSize: number;
  readonly preferredBlockSize: number;
}

export interface ExportDirectory<E extends ExportInfo> {
  /** The export called `name` ('' is this socket's default export). */
  find(name: string): E | undefined;
  list(): E[];
}

export interface Negotiated<E> {
  export: E;
  structuredReplies: boolean;
  /** Metadata context id for base:allocation, or 0 when not selected. */
  baseAllocation: number;
  noZeroes: boolean;
}

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

export function transmissionFlags(e: ExportInfo, structured: boolean): number {
  let f = TF_HAS_FLAGS | TF_SEND_FLUSH | TF_SEND_FUA | TF_SEND_TRIM | TF_SEND_WRITE_ZEROES | TF_CAN_MULTI_CONN;
  if (e.readOnly) f |= TF_READ_ONLY;
  if (structured) f |= TF_SEND_DF;
  return f;
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

function optionReply(option: number, type: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.allocUnsafe(20 + data.length);
  b.writeBigUInt64BE(OPT_REPLY_MAGIC, 0);
  b.writeUInt32BE(option, 8);
  b.writeUInt32BE(type >>> 0, 12);
  b.writeUInt32BE(data.length, 16);
  data.copy(b, 20);
  return b;
}

function errorReply(option: number, type: number, message: string): Buffer {
  return optionReply(option, type, Buffer.from(message, 'utf8'));
}

/** Parses length-prefixed strings and counts out of an option payload. */
class Cursor {
  private at = 0;
  constructor(private readonly b: Buffer) {}
  u16(): number {
    if (this.at + 2 > this.b.length) throw new RangeError('short option');
    const v = this.b.readUInt16BE(this.at);
    this.at += 2;
    return v;
  }
  u32(): number {
    if (this.at + 4 > this.b.length) throw new RangeError('short option');
    const v = this.b.readUInt32BE(this.at);
    this.at += 4;
    return v;
  }
  str(n: number): string {
    if (n > 4096 || this.at + n > this.b.length) throw new RangeError('bad string length');
    const s = this.b.toString('utf8', this.at, this.at + n);
    this.at += n;
    return s;
  }
  get done(): boolean {
    return this.at === this.b.length;
  }
}

function exportInfo(e: ExportInfo, structured: boolean): Buffer {
  const b = Buffer.allocUnsafe(12);
  b.writeUInt16BE(INFO_EXPORT, 0);
  b.writeBigUInt64BE(BigInt(e.size), 2);
  b.writeUInt16BE(transmissionFlags(e, structured), 10);
  return b;
}

function blockSizeInfo(e: ExportInfo): Buffer {
  const b = Buffer.allocUnsafe(14);
  b.writeUInt16BE(INFO_BLOCK_SIZE, 0);
  b.writeUInt32BE(e.minimumBlockSize, 2);
  b.writeUInt32BE(e.preferredBlockSize, 6);
  b.writeUInt32BE(MAX_PAYLOAD, 10);
  return b;
}

function stringInfo(type: number, s: string): Buffer {
  const t = Buffer.from(s, 'utf8');
  const b = Buffer.allocUnsafe(2 + t.length);
  b.writeUInt16BE(type, 0);
  t.copy(b, 2);
  return b;
}

/** The contexts a query selects (we know only base:allocation). */
function matchContexts(query: string, list: boolean): string[] {
  if (list && (query === '' || query === 'base:')) return [BASE_ALLOCATION];
  return query === BASE_ALLOCATION ? [BASE_ALLOCATION] : [];
}

export async function handshake<E extends ExportInfo>(socket: Socket, reader: SocketReader, dir: ExportDirectory<E>): Promise<Negotiated<E> | undefined> {
  const greet = Buffer.allocUnsafe(18);
  greet.writeBigUInt64BE(NBDMAGIC, 0);
  greet.writeBigUInt64BE(IHAVEOPT, 8);
  greet.writeUInt16BE(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES, 16);
  socket.write(greet);
  const clientFlags = (await reader.take(4)).readUInt32BE(0);
  if (clientFlags & ~(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES)) throw new ProtocolError(`unknown client flags 0x${clientFlags.toString(16)}`);
  const noZeroes = (clientFlags & FLAG_C_NO_ZEROES) !== 0;
  let structured = false;
  let baseAllocation = 0;

  for (;;) {
    const h = await reader.take(16);
    if (h.readBigUInt64BE(0) !== IHAVEOPT) throw new ProtocolError('bad option magic');
    const option = h.readUInt32BE(8);
    const length = h.readUInt32BE(12);
    if (length > MAX_OPTION_LENGTH) throw new ProtocolError(`option ${option} of ${length} bytes is too long`);
    const data = length ? Buffer.from(await reader.take(length)) : Buffer.alloc(0);
    const reply = (type: number, payload?: Buffer) => socket.write(optionReply(option, type, payload));
    const fail = (type: number, message: string) => socket.write(errorReply(option, type, message));

    switch (option) {
      case OPT_EXPORT_NAME: {
        const e = dir.find(data.toString('utf8'));
        if (!e) throw new ProtocolError(`no export named "${data.toString('utf8')}"`);
        const b = Buffer.alloc(noZeroes ? 10 : 134);
        b.writeBigUInt64BE(BigInt(e.size), 0);
        b.writeUInt16BE(transmissionFlags(e, structured), 8);
        socket.write(b);
        return { export: e, structuredReplies: structured, baseAllocation, noZeroes };
      }
      case OPT_ABORT:
        reply(REP_ACK);
        return undefined;
      case OPT_LIST:
        if (length !== 0) {
          fail(REP_ERR_INVALID, 'NBD_OPT_LIST takes no data');
          break;
        }
        for (const e of dir.list()) {
          const n = Buffer.from(e.name, 'utf8');
          reply(REP_SERVER, Buffer.concat([u32(n.length), n]));
        }
        reply(REP_ACK);
        break;
      case OPT_STARTTLS:
        fail(REP_ERR_POLICY, 'TLS is not offered on this unix socket');
        break;
      case OPT_INFO:
      case OPT_GO: {
        let name: string;
        let wanted: number[];
        try {
          const c = new Cursor(data);
          name = c.str(c.u32());
          const n = c.u16();
          wanted = [];
          for (let i = 0; i < n; i++) wanted.push(c.u16());
          if (!c.done) throw new RangeError('trailing bytes');
        } catch {
          fail(REP_ERR_INVALID, 'malformed NBD_OPT_INFO/GO');
          break;
        }
        const e = dir.find(name);
        if (!e) {
          fail(REP_ERR_UNKNOWN, `no export named "${name}"`);
          break;
        }
        reply(REP_INFO, exportInfo(e, structured));
        // Block sizes are always sent: the disk cannot take writes below its logical sector.
        reply(REP_INFO, blockSizeInfo(e));
        if (wanted.includes(INFO_NAME)) reply(REP_INFO, stringInfo(INFO_NAME, e.name));
        if (wanted.includes(INFO_DESCRIPTION)) reply(REP_INFO, stringInfo(INFO_DESCRIPTION, e.description));
        reply(REP_ACK);
        if (option === OPT_GO) return { export: e, structuredReplies: structured, baseAllocation, noZeroes };
        break;
      }
      case OPT_STRUCTURED_REPLY:
        if (length !== 0) fail(REP_ERR_INVALID, 'NBD_OPT_STRUCTURED_REPLY takes no data');
        else {
          structured = true;
          reply(REP_ACK);
        }
        break;
      case OPT_LIST_META_CONTEXT:
      case OPT_SET_META_CONTEXT: {
        if (!structured) {
          fail(REP_ERR_INVALID, 'negotiate structured replies first');
          break;
        }
        let name: string;
        const queries: string[] = [];
        try {
          const c = new Cursor(data);
          name = c.str(c.u32());
          const n = c.u32();
          if (n > 256) throw new RangeError('too many queries');
          for (let i = 0; i < n; i++) queries.push(c.str(c.u32()));
          if (!c.done) throw new RangeError('trailing bytes');
        } catch {
          fail(REP_ERR_INVALID, 'malformed meta context option');
          break;
        }
        if (!dir.find(name)) {
          fail(REP_ERR_UNKNOWN, `no export named "${name}"`);
          break;
        }
        const list = option === OPT_LIST_META_CONTEXT;
        const found = new Set<string>();
        for (const q of list && queries.length === 0 ? [''] : queries) for (const m of matchContexts(q, list)) found.add(m);
        if (!list) baseAllocation = found.has(BASE_ALLOCATION) ? BASE_ALLOCATION_ID : 0;
        for (const m of found) {
          const t = Buffer.from(m, 'utf8');
          reply(REP_META_CONTEXT, Buffer.concat([u32(list ? 0 : BASE_ALLOCATION_ID), t]));
        }
        reply(REP_ACK);
        break;
      }
      default:
        fail(REP_ERR_UNSUP, `option ${option} is not supported`);
    }
  }
}
