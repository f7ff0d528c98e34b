// The host's "physical" network adapters. On this test machine the datacenter network is
// loopback/netns UDP, so an adapter is a UDP tunnel endpoint pair declared when the daemon
// starts: `vmhostd --net-adapter 'NAME=udp:LOCALADDR:LOCALPORT->REMOTEADDR:REMOTEPORT'`
// (repeatable) and/or DIR/net-adapters.json (a JSON array of the same strings, so a setup
// script keeps them with the data dir). External switches bind to an adapter, or to a NIC team
// of adapters (net-teams.ts), by name.
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { VmhostError } from '../common/index.ts';
import type { UplinkSettings, UplinkSpec } from '../switch/index.ts';
import { invalid } from './invalid-argument.ts';

export const NET_ADAPTER_FLAG = '--net-adapter';
export const NET_ADAPTER_FILE = 'net-adapters.json';
const SYNTAX = 'NAME=udp:LOCALADDR:LOCALPORT->REMOTEADDR:REMOTEPORT';
// An IPv6 address goes in brackets, as in a URL: udp:[::1]:47001->[::1]:47002.
const SPEC = /^(.+?)=udp:(\[[^\]]+\]|[^:[\]]+):(\d{1,5})->(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/;
export const ADAPTER_NAME = /^[A-Za-z0-9._()-](?:[A-Za-z0-9 ._()-]{0,62}[A-Za-z0-9._()-])?$/;

/** What an External switch can bind to: a declared adapter or a NIC team. */
export interface BindTarget {
  readonly name: string;
  readonly uplink: UplinkSpec;
  /** Get-NetAdapter's InterfaceDescription, also what Get-VMSwitch shows as NetAdapterInterfaceDescription. */
  readonly description: string;
}

export interface HostNetAdapter extends BindTarget {
  readonly uplink: UplinkSettings;
}

/** One declaration; `source` (the flag or the file) names where it came from in errors. */
export function parseNetAdapter(spec: string, source: string = NET_ADAPTER_FLAG): HostNetAdapter {
  const m = SPEC.exec(spec.trim());
  if (!m) throw invalid(source, `'${spec}' is not ${SYNTAX}`);
  const [, name, la, lp, ra, rp] = m as unknown as [string, string, string, string, string, string];
  if (!ADAPTER_NAME.test(name)) throw invalid(source, `adapter name '${name}' must be 1–64 letters, digits, spaces, . _ ( ) - (not starting or ending with a space)`);
  const addr = (a: string): string => {
    const bare = a.replace(/^\[(.*)\]$/, '$1');
    if (isIP(bare) === 0 || (a.startsWith('[') && isIP(bare) !== 6)) throw invalid(source, `'${a}' in '${spec}' is not an IP address`);
    return bare;
  };
  const port = (p: string): number => {
    const n = Number(p);
    if (!(n >= 1 && n <= 65535)) throw invalid(source, `port ${p} in '${spec}' is not 1–65535`);
    return n;
  };
  const uplink: UplinkSettings = { localAddress: addr(la), localPort: port(lp), remoteAddress: addr(ra), remotePort: port(rp) };
  if (isIP(uplink.localAddress) !== isIP(uplink.remoteAddress)) throw invalid(source, `'${spec}' mixes IPv4 and IPv6`);
  if (uplink.localAddress === uplink.remoteAddress && uplink.localPort === uplink.remotePort) throw invalid(source, `'${spec}' points at itself`);
  return { name, uplink, description: `vmhost UDP tunnel ${endpoint(uplink.localAddress, uplink.localPort)} -> ${endpoint(uplink.remoteAddress, uplink.remotePort)}` };
}

export function endpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** The flags and DIR/net-adapters.json together; names and local endpoints must be unique across both. */
export async function loadNetAdapters(dataDir: string, flags: readonly string[]): Promise<NetAdapters> {
  const path = join(dataDir, NET_ADAPTER_FILE);
  const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw new VmhostError('INVALID_ARGUMENT', `${NET_ADAPTER_FILE}: cannot read ${path}: ${e.message}`, { path }, { cause: e });
  });
  const declared = flags.map((f) => ({ spec: f, source: NET_ADAPTER_FLAG }));
  if (text !== undefined) {
    let list: unknown;
    try { list = JSON.parse(text); } catch (e) { throw invalid(NET_ADAPTER_FILE, `${path} is not JSON: ${(e as Error).message}`); }
    if (!Array.isArray(list) || !list.every((x): x is string => typeof x === 'string')) throw invalid(NET_ADAPTER_FILE, `${path} must be a JSON array of "${SYNTAX}" strings`);
    declared.push(...list.map((spec) => ({ spec, source: NET_ADAPTER_FILE })));
  }
  const out: HostNetAdapter[] = [];
  for (const d of declared) {
    const a = parseNetAdapter(d.spec, d.source);
    const local = endpoint(a.uplink.localAddress, a.uplink.localPort);
    for (const b of out) {
      if (b.name.toLowerCase() === a.name.toLowerCase()) throw invalid(d.source, `network adapter '${a.name}' is declared twice`);
      if (endpoint(b.uplink.localAddress, b.uplink.localPort) === local) throw invalid(d.source, `adapters '${b.name}' and '${a.name}' both use local endpoint ${local}`);
    }
    out.push(a);
  }
  return new NetAdapters(out);
}

export class NetAdapters {
  /** `teams`: the NIC teams a switch may bind to as well, asked for at each lookup (they change at run time). */
  constructor(private readonly all: readonly HostNetAdapter[] = [], private readonly teams: () => readonly BindTarget[] = () => []) {}

  /** The declared adapters (not the teams). */
  list(): readonly HostNetAdapter[] { return this.all; }

  /** The same adapters, with `teams` as further bind targets. */
  withTeams(teams: () => readonly BindTarget[]): NetAdapters { return new NetAdapters(this.all, teams); }

  private targets(): readonly BindTarget[] { return [...this.all, ...this.teams()]; }

  get(name: string): BindTarget | undefined {
    return this.targets().find((a) => a.name.toLowerCase() === name.toLowerCase());
  }

  adapter(name: string): HostNetAdapter | undefined {
    return this.all.find((a) => a.name.toLowerCase() === name.toLowerCase());
  }

  /** -NetAdapterName or -NetAdapterInterfaceDescription (exactly one); unknown → an error listing the adapters there are. */
  pick(byName: string | undefined, byDescription: string | undefined): BindTarget {
    if (byName !== undefined && byDescription !== undefined) throw invalid('NetAdapterName', 'give -NetAdapterName or -NetAdapterInterfaceDescription, not both');
    const found = byName !== undefined ? this.get(byName) : this.targets().find((a) => a.description.toLowerCase() === byDescription?.toLowerCase());
    if (found) return found;
    const [param, value] = byName !== undefined ? ['NetAdapterName', byName] : ['NetAdapterInterfaceDescription', byDescription ?? ''];
    const known = this.targets().length === 0
      ? 'this host has none (declare them with vmhostd --net-adapter NAME=udp:LOCALADDR:LOCALPORT->REMOTEADDR:REMOTEPORT)'
      : `this host has ${this.targets().map((a) => `'${param === 'NetAdapterName' ? a.name : a.description}'`).join(', ')}`;
    throw new VmhostError('NOT_FOUND', `${param}: no network adapter '${value}'; ${known}`, { param, adapter: value });
  }
}
