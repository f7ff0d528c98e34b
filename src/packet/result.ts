// The one way packet parsers report malformed input: a typed result, never a throw.
// A drop reason is a stable string the switch counts drops by. Depends on nothing.

/** Layer at which a frame was found malformed. */
export type Layer = 'ethernet' | 'vlan' | 'arp' | 'ipv4' | 'ipv6' | 'icmpv4' | 'icmpv6' | 'udp' | 'tcp' | 'dhcp' | 'gre' | 'lacp';

/** Every reason a parser may refuse bytes. */
export type DropReason =
  | 'truncated-ethernet' | 'giant-frame' | 'truncated-vlan' | 'qinq-unsupported'
  | 'truncated-arp' | 'unsupported-arp'
  | 'truncated-ipv4' | 'bad-ipv4-version' | 'bad-ipv4-header-length' | 'bad-ipv4-total-length'
  | 'truncated-ipv6' | 'bad-ipv6-version' | 'bad-ipv6-payload-length' | 'truncated-ipv6-extension' | 'too-many-ipv6-extensions'
  | 'truncated-icmpv4' | 'truncated-icmpv6' | 'bad-nd-option'
  | 'truncated-udp' | 'bad-udp-length' | 'truncated-tcp' | 'bad-tcp-data-offset'
  | 'truncated-dhcp' | 'bad-dhcp-cookie' | 'bad-dhcp-option'
  | 'truncated-gre' | 'unsupported-gre-version' | 'not-gre-in-udp'
  | 'not-nvgre' | 'nvgre-fragment' | 'bad-ipv4-checksum' | 'nvgre-bad-flags' | 'nvgre-bad-protocol' | 'nvgre-reserved-vsid' | 'truncated-nvgre-inner'
  | 'not-lacp' | 'bad-lacp-version' | 'bad-lacp-tlv';

export interface Malformed {
  readonly ok: false;
  readonly reason: DropReason;
  readonly layer: Layer;
  /** Byte offset in the parsed buffer where the problem was found. */
  readonly offset: number;
}

/** A parser's answer: the header fields with `ok: true`, or why the bytes were refused. */
export type Parsed<T> = (T & { readonly ok: true }) | Malformed;

export function malformed(reason: DropReason, layer: Layer, offset: number): Malformed {
  return { ok: false, reason, layer, offset };
}
