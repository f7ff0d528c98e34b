// DHCPv4 (RFC 2131/2132): the BOOTP fixed part, the magic cookie, options (walked,
// not copied), the message type, and which messages only a server sends.
// Option overload (option 52: options in sname/file) is not followed.
// Depends on bytes, address, result.
import { u16, u32, put16, put32 } from './bytes.ts';
import { macToNumber } from './address.ts';
import { type Parsed, malformed } from './result.ts';

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;
export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
export const DHCP_MAGIC_COOKIE = 0x63825363;
export const DHCP_FIXED_LENGTH = 236;
export const DHCP_OPTIONS_OFFSET = 240;

export const DHCPDISCOVER = 1;
export const DHCPOFFER = 2;
export const DHCPREQUEST = 3;
export const DHCPDECLINE = 4;
export const DHCPACK = 5;
export const DHCPNAK = 6;
export const DHCPRELEASE = 7;
export const DHCPINFORM = 8;
export const DHCPFORCERENEW = 9;

export const DHCP_OPT_PAD = 0;
export const DHCP_OPT_SUBNET_MASK = 1;
export const DHCP_OPT_ROUTER = 3;
export const DHCP_OPT_DNS = 6;
export const DHCP_OPT_REQUESTED_IP = 50;
export const DHCP_OPT_LEASE_TIME = 51;
export const DHCP_OPT_MESSAGE_TYPE = 53;
export const DHCP_OPT_SERVER_ID = 54;
export const DHCP_OPT_PARAM_REQUEST = 55;
export const DHCP_OPT_END = 255;

/** OFFER, ACK, NAK, FORCERENEW: the messages a DHCP guard drops from unauthorized ports. */
export function isDhcpServerMessageType(type: number): boolean {
  return type === DHCPOFFER || type === DHCPACK || type === DHCPNAK || type === DHCPFORCERENEW;
}

export interface DhcpOptionRef {
  readonly code: number;
  /** Offset of the option's data (after code and length) and its length. */
  readonly offset: number;
  readonly length: number;
}

export interface DhcpMessage {
  readonly op: number;
  readonly htype: number;
  readonly hlen: number;
  readonly hops: number;
  readonly xid: number;
  readonly secs: number;
  readonly flags: number;
  readonly ciaddr: number;
  readonly yiaddr: number;
  readonly siaddr: number;
  readonly giaddr: number;
  /** Client hardware address as a MAC number (first 6 bytes of chaddr). */
  readonly chaddr: number;
  /** Option 53, or -1 when absent (plain BOOTP). */
  readonly messageType: number;
  readonly options: readonly DhcpOptionRef[];
}

/** Walks options from `p` to `end`; calls `visit` for each; returns the offset of a bad option or -1. */
export function walkDhcpOptions(b: Uint8Array, p: number, end: number, visit: (code: number, off: number, len: number) => void): number {
  while (p < end) {
    const code = b[p]!;
    if (code === DHCP_OPT_END) return -1;
    if (code === DHCP_OPT_PAD) { p++; continue; }
    if (end - p < 2) return p;
    const len = b[p + 1]!;
    if (end - p - 2 < len) return p;
    visit(code, p + 2, len);
    p += 2 + len;
  }
  return -1;
}

/** Parses a DHCP message of `len` bytes (the UDP payload) at `off`. */
export function parseDhcp(b: Uint8Array, off: number, len = b.length - off): Parsed<DhcpMessage> {
  if (len < DHCP_OPTIONS_OFFSET || b.length - off < len) return malformed('truncated-dhcp', 'dhcp', off);
  if (u32(b, off + 236) !== DHCP_MAGIC_COOKIE) return malformed('bad-dhcp-cookie', 'dhcp', off + 236);
  const options: DhcpOptionRef[] = [];
  let messageType = -1;
  const badAt = walkDhcpOptions(b, off + DHCP_OPTIONS_OFFSET, off + len, (code, o, l) => {
    options.push({ code, offset: o, length: l });
    if (code === DHCP_OPT_MESSAGE_TYPE && l >= 1 && messageType < 0) messageType = b[o]!;
  });
  if (badAt >= 0) return malformed('bad-dhcp-option', 'dhcp', badAt);
  return {
    ok: true, op: b[off]!, htype: b[off + 1]!, hlen: b[off + 2]!, hops: b[off + 3]!, xid: u32(b, off + 4),
    secs: u16(b, off + 8), flags: u16(b, off + 10), ciaddr: u32(b, off + 12), yiaddr: u32(b, off + 16),
    siaddr: u32(b, off + 20), giaddr: u32(b, off + 24), chaddr: macToNumber(b, off + 28), messageType, options,
  };
}

export interface DhcpFields {
  readonly op: number;
  readonly xid: number;
  readonly chaddr: Uint8Array;
  readonly messageType?: number;
  readonly secs?: number;
  /** 0x8000: broadcast. */
  readonly flags?: number;
  readonly ciaddr?: number;
  readonly yiaddr?: number;
  readonly siaddr?: number;
  readonly giaddr?: number;
  /** Further options, written after the message type, in order; END is added. */
  readonly options?: readonly { readonly code: number; readonly data: Uint8Array }[];
}

export function buildDhcp(f: DhcpFields): Uint8Array {
  const opts = [...(f.messageType !== undefined ? [{ code: DHCP_OPT_MESSAGE_TYPE, data: new Uint8Array([f.messageType]) }] : []), ...(f.options ?? [])];
  let n = DHCP_OPTIONS_OFFSET + 1;
  for (const o of opts) n += 2 + o.data.length;
  const out = new Uint8Array(Math.max(n, 300)); // BOOTP minimum message size, as clients send
  out[0] = f.op; out[1] = 1; out[2] = 6;
  put32(out, 4, f.xid); put16(out, 8, f.secs ?? 0); put16(out, 10, f.flags ?? 0);
  put32(out, 12, f.ciaddr ?? 0); put32(out, 16, f.yiaddr ?? 0); put32(out, 20, f.siaddr ?? 0); put32(out, 24, f.giaddr ?? 0);
  out.set(f.chaddr.subarray(0, 6), 28);
  put32(out, 236, DHCP_MAGIC_COOKIE);
  let p = DHCP_OPTIONS_OFFSET;
  for (const o of opts) { out[p] = o.code; out[p + 1] = o.data.length; out.set(o.data, p + 2); p += 2 + o.data.length; }
  out[p] = DHCP_OPT_END;
  return out;
}
