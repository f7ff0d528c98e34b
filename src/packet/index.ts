// Public surface of the packet library (layer 1, pure: byte buffers only, imports src/common).
// Per protocol: parseX(buf, off) → Parsed<XHeader> (zero-copy: offsets into buf, never
// payload copies) and buildX(fields) → new bytes with lengths and checksums filled in.
// Per frame: parseFrame / parseFrameInto → FrameInfo, the switch's one-call classifier.
export { type DropReason, type Layer, type Malformed, type Parsed } from './result.ts';
export { internetChecksum, l4Checksum, pseudoHeaderSum } from './bytes.ts';
export {
  BROADCAST_MAC, parseMac, formatMac, macToNumber, macFromNumber, formatMacNumber, isMulticastMac, isBroadcastMac,
  parseIpv4 as parseIpv4Address, formatIpv4, ipv4ToBytes, ipv4Mask, ipv4InPrefix, isIpv4Multicast, isIpv4Broadcast, ipv4MulticastMac,
  parseIpv6 as parseIpv6Address, formatIpv6, ipv6InPrefix, ipv6Equal, ipv6Key, isIpv6Multicast, isIpv6Unspecified,
  solicitedNodeMulticast, isSolicitedNodeMulticast, ipv6MulticastMac,
  type Cidr, parseCidr, formatCidr,
} from './address.ts';
export {
  ETHERTYPE_IPV4, ETHERTYPE_ARP, ETHERTYPE_VLAN, ETHERTYPE_QINQ, ETHERTYPE_IPV6, ETHERTYPE_TEB,
  type VlanTag, type EthernetHeader, type EthernetFields, parseEthernet, buildEthernet, pushVlan, popVlan, setVlanId,
} from './ethernet.ts';
export { ARP_REQUEST, ARP_REPLY, ETHERTYPE_RARP, RARP_REQUEST, type ArpPacket, type ArpFields, parseArp, buildArp, buildGratuitousArp, buildRarpAnnounce, isGratuitousArp } from './arp.ts';
export {
  IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_GRE, IPPROTO_ICMPV6, IPV4_FLAG_DF, IPV4_FLAG_MF,
  type Ipv4Header, type Ipv4Fields, parseIpv4, buildIpv4, ipv4ChecksumOk, setIpv4Checksum,
} from './ipv4.ts';
export { IPV6_MAX_EXTENSIONS, IPV6_FRAGMENT, type Ipv6Header, type Ipv6Fields, type Ipv6Extension, parseIpv6, buildIpv6 } from './ipv6.ts';
export {
  ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY, ICMP_DEST_UNREACHABLE, ICMP_TIME_EXCEEDED, ICMP_NET_UNREACHABLE, ICMP_HOST_UNREACHABLE, ICMP_FRAG_NEEDED, ICMP_ERROR_MAX,
  type Icmpv4Header, parseIcmpv4, buildIcmpv4Echo, buildIcmpv4Error, icmpv4ChecksumOk,
} from './icmpv4.ts';
export {
  ICMPV6_DEST_UNREACHABLE, ICMPV6_PACKET_TOO_BIG, ICMPV6_TIME_EXCEEDED, ICMPV6_PARAMETER_PROBLEM, ICMPV6_NO_ROUTE, ICMPV6_ADDRESS_UNREACHABLE, ICMPV6_ERROR_MAX,
  isIcmpv6Error, buildIcmpv6Error,
  ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY, ND_ROUTER_SOLICIT, ND_ROUTER_ADVERT, ND_NEIGHBOR_SOLICIT, ND_NEIGHBOR_ADVERT, ND_REDIRECT,
  ND_OPT_SOURCE_LINKADDR, ND_OPT_TARGET_LINKADDR, ND_OPT_PREFIX_INFORMATION, ND_OPT_REDIRECTED_HEADER, ND_OPT_MTU,
  NA_FLAG_ROUTER, NA_FLAG_SOLICITED, NA_FLAG_OVERRIDE, RA_FLAG_MANAGED, RA_FLAG_OTHER,
  type Icmpv6Message, type PrefixInformation, type NdOption, isNdType, parseIcmpv6, icmpv6ChecksumOk, setIcmpv6Checksum,
  buildRouterSolicitation, buildRouterAdvertisement, buildNeighborSolicitation, buildNeighborAdvertisement, buildRedirect, buildIcmpv6Echo,
} from './icmpv6.ts';
export { type UdpHeader, type UdpFields, parseUdp, buildUdp, udpChecksumOk } from './udp.ts';
export {
  TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG, TCP_ECE, TCP_CWR,
  type TcpHeader, type TcpFields, parseTcp, buildTcp, tcpChecksumOk,
} from './tcp.ts';
export {
  DHCP_SERVER_PORT, DHCP_CLIENT_PORT, BOOTREQUEST, BOOTREPLY,
  DHCPDISCOVER, DHCPOFFER, DHCPREQUEST, DHCPDECLINE, DHCPACK, DHCPNAK, DHCPRELEASE, DHCPINFORM, DHCPFORCERENEW,
  DHCP_OPT_SUBNET_MASK, DHCP_OPT_ROUTER, DHCP_OPT_DNS, DHCP_OPT_REQUESTED_IP, DHCP_OPT_LEASE_TIME, DHCP_OPT_MESSAGE_TYPE, DHCP_OPT_SERVER_ID,
  type DhcpMessage, type DhcpFields, type DhcpOptionRef, parseDhcp, buildDhcp, isDhcpServerMessageType,
} from './dhcp.ts';
export {
  GRE_UDP_PORT, NVGRE_PROTOCOL, VSID_MIN, VSID_MAX, type GreHeader, type GreFields,
  parseGre, buildGre, buildNvgre, buildGreInUdp, parseGreInUdp, nvgreKey, nvgreVsid, nvgreFlowId,
} from './gre.ts';
export { NVGRE_HEADER_LENGTH, NVGRE_OVERHEAD, type NvgreFields, type NvgreRefusal, type Encoded, type NvgreFrame, type NvgreHeaderFields, NvgreTemplate, NvgreRecord, encodeNvgre, nvgreTemplate, decodeNvgre, decodeNvgreInto } from './nvgre.ts';
export {
  ETHERTYPE_SLOW, SLOW_SUBTYPE_LACP, SLOW_PROTOCOLS_MAC, LACPDU_FRAME_LENGTH,
  LACP_ACTIVITY, LACP_TIMEOUT, LACP_AGGREGATION, LACP_SYNCHRONIZATION, LACP_COLLECTING, LACP_DISTRIBUTING, LACP_DEFAULTED, LACP_EXPIRED,
  type LacpInfo, type LacpduFields, type Lacpdu, encodeLacpdu, parseLacpdu, isLacpFrame, formatLacpState, formatLacpSystem,
} from './lacp.ts';
export { FrameInfo, parseFrame, parseFrameInto } from './classify.ts';
export { LINKTYPE_ETHERNET, type PcapOptions, pcapHeader, pcapRecord } from './pcap.ts';
