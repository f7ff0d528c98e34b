// Network virtualization across two hosts with real guests, through the CLI: two daemons whose
// "physical" adapters are UDP tunnels pointing at each other (the provider network), an
// External switch on each, tenants Blue (VSID 5001, and 5002 in the same routing domain) and
// Red (VSID 6001) both on 10.0.0.0/24 with one VM of each per host (and Blue's 10.0.1.0/24 VM
// on host A). Policy as an orchestrator pushes it: a provider address per host, the same
// customer routes and lookup records on both. Blue pings Blue across hosts, Red pings Red; no
// frame of one tenant reaches the other's ports (captured on every VM port); the frames that
// crossed are GRE with key VSID << 8 | FlowID between the PAs, decoded by tshark (GRE carrying
// Transparent Ethernet Bridging: the inner frame shows; no NVGRE dissector) with nothing
// malformed; the distributed router joins Blue's two subnets on host A and across hosts; a
// ping to a customer address without a lookup record is dropped and counted by reason; Blue's
// guests also have IPv6 CAs (records and on-link routes beside the IPv4 ones) and ping6 each
// other across hosts, bridged and routed: two configured statically, Blue's 5002 guest by SLAAC
// from the router's Router Advertisement (its address prefix + modified EUI-64 of its MAC, the
// record the orchestrator pushes; its default route the router's link-local address); Blue A
// pings its gateway ::1, and a hop-limit-1 ping across subnets earns it Time Exceeded (counted).
// Then the in-daemon gateway on host A (New-VmhostNetVirtualizationGateway, NAT mode, for Blue
// only) between the External switch and an Internal "datacenter" switch whose host vNIC has the
// datacenter address: Blue's guest pings that address and gets replies (the host's kernel
// answers the external address); Red's guest gets nothing (its domain has no route out: counted
// by the router), nor does the host pinging the external address unsolicited (counted by the
// gateway); the inputs are checked; Remove- takes the gateway off. Then the gateway for IPv6,
// Blue and Red both in NAT mode and Red A given Blue A's very IPv6 address: both ping the
// datacenter's IPv6 address (the host's kernel answers; it routes each tenant's NPTv6 external
// prefix to the gateway, found by Neighbor Discovery) and get replies; Red pinging Blue's
// translated address is refused (gw-hairpin); Blue's datacenter MTU of 1400 earns its 1448-byte
// ping Packet Too Big, after which the guest fragments and gets through; tshark on the
// datacenter switch shows both tenants' translated sources, hop limit 62, good checksums.
// Then Move-VM of Blue's 5002 guest from A to B (diskless, nothing to share): it keeps its CA,
// VSID and MAC, both hosts' lookup records name B's PA afterwards (the destination re-points its
// own before the guest resumes, the source after the commit: host/hnv-move.ts), and a guest on A
// pinging it through the move reaches it again; the time from A's record change to a ping
// answered, and the pinging guest's longest gap, are printed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freeTestNet, tapSkip } from '../src/host/tap-test-support.ts';
import { formatIpv6, parseIpv6Address } from '../src/packet/index.ts';
import { TestDaemon, freeUdpPort, runCli } from './support/daemon.ts';
import { pingBlackout } from './support/ping-blackout.ts';
import { Nptv6 } from '../src/hnv/nptv6.ts';
import { cliTools, type CliTools } from './support/cli-tools.ts';

const BLUE = '{11111111-2222-3333-4444-000000000001}', RED = '{22222222-2222-3333-4444-000000000002}';
const PA = { a: '192.168.100.1', b: '192.168.100.2' } as const;
/** The guests: host, virtual subnet, customer address, default gateway. */
const GUESTS = {
  blueA: { host: 'a', vsid: 5001, ca: '10.0.0.10', gw: '10.0.0.1' },
  redA: { host: 'a', vsid: 6001, ca: '10.0.0.10', gw: '10.0.0.1' },
  blueA2: { host: 'a', vsid: 5002, ca: '10.0.1.10', gw: '10.0.1.1' },
  blueB: { host: 'b', vsid: 5001, ca: '10.0.0.11', gw: '10.0.0.1' },
  redB: { host: 'b', vsid: 6001, ca: '10.0.0.11', gw: '10.0.0.1' },
} as const;
type Guest = keyof typeof GUESTS;
const NAMES = Object.keys(GUESTS) as Guest[];
/** IPv6 customer addresses of Blue's guests (records beside their IPv4 ones; the subnets' gateways are ::1); 'slaac': the guest takes it from the router's RA. */
const V6: Partial<Record<Guest, { ca: string | 'slaac'; prefix: string }>> = {
  blueA: { ca: 'fd00:b::10', prefix: 'fd00:b::/64' }, blueB: { ca: 'fd00:b::11', prefix: 'fd00:b::/64' }, blueA2: { ca: 'slaac', prefix: 'fd00:b:1::/64' },
};
/** The address SLAAC makes of a /64 and a MAC (12 hex digits): the modified EUI-64 (RFC 4291 App. A). */
function slaac(prefix: string, mac: string): string {
  const b = mac.match(/../g)!.map((x) => parseInt(x, 16));
  const words = [((b[0]! ^ 2) << 8) | b[1]!, (b[2]! << 8) | 0xff, 0xfe00 | b[3]!, (b[4]! << 8) | b[5]!];
  return formatIpv6(parseIpv6Address(`${prefix.replace('::/64', '')}::${words.map((w) => w.toString(16)).join(':')}`)); // canonical (RFC 5952), as the records keep it
}
/** The gateway: its CA in Blue's 5001 (the default route's next hop) with a lookup record on A, and the datacenter /24 (tap-test-support.ts slices: this file 250–254). */
const GATEWAY = { ca: '10.0.0.254', mac: '02155DFE0001', redMac: '02155DFE0002', net: freeTestNet(250, 5) } as const;
const DATACENTER = `${GATEWAY.net}.1`, EXTERNAL = `${GATEWAY.net}.10`;
/** IPv6 through the gateway: its CA in both tenants' fd00:b::/64, the datacenter's address, and per tenant its external address and NPTv6 prefix (/32: Blue's internal one must hold fd00:b::/64 and fd00:b:1::/64). */
const GW6 = { ca: 'fd00:b::fe', blue: { external: 'fd15:dc::b', prefix: 'fd15:b::/32' }, red: { external: 'fd15:dc::e', prefix: 'fd15:e::/32' } } as const;
const DC6 = 'fd15:dc::1';
const adapterFlag = (local: number, remote: number) => ['--net-adapter', `Uplink=udp:127.0.0.1:${local}->127.0.0.1:${remote}`];

/** The frames of a pcap file (our switch writes little-endian pcap). */
function pcapFrames(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let o = 24; o + 16 <= b.length;) {
    const len = b.readUInt32LE(o + 8);
    out.push(b.subarray(o + 16, o + 16 + len));
    o += 16 + len;
  }
  return out;
}
const macOf = (f: Buffer, off: number): string => f.subarray(off, off + 6).toString('hex').toUpperCase();

describe('network virtualization: two tenants with one address space on two hosts', () => {
  const t = {} as Record<'a' | 'b', CliTools>;
  const d = {} as Record<'a' | 'b', TestDaemon>;
  const mac = {} as Record<Guest, string>;
  let dir = '';
  let datacenterIf = '';
  before(async () => {
    const pa = await freeUdpPort();
    let pb = await freeUdpPort();
    while (pb === pa) pb = await freeUdpPort();
    [d.a, d.b] = await Promise.all([TestDaemon.start(undefined, adapterFlag(pa, pb)), TestDaemon.start(undefined, adapterFlag(pb, pa))]);
    t.a = cliTools(d.a);
    t.b = cliTools(d.b);
    dir = await mkdtemp(join(tmpdir(), 'vmhost-hnv-cap-'));
  });
  after(async () => {
    await Promise.all([d.a?.stop(), d.b?.stop()]);
    // SIGKILL: the Internal switch's persistent tap stays, so delete it.
    if (datacenterIf) await promisify(execFile)('ip', ['link', 'del', datacenterIf]).catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const on = (g: Guest): CliTools => t[GUESTS[g].host];
  /** A guest's IPv6 CA (its MAC known). */
  const ca6 = (g: Guest): string => (V6[g]!.ca === 'slaac' ? slaac(V6[g]!.prefix, mac[g]) : V6[g]!.ca);
  /** A second try forgives one lost ARP when a ping is expected to work. */
  const canPing = async (g: Guest, ip: string): Promise<boolean> => (await on(g).sh(g, `ping -c 1 -W 2 ${ip} >/dev/null 2>&1 || ping -c 1 -W 2 ${ip}`)).code === 0;
  /** Expected to fail: one try is the stricter check, and half the wait. */
  const cannotPing = async (g: Guest, ip: string): Promise<boolean> => (await on(g).sh(g, `ping -c 1 -W 2 ${ip}`)).code !== 0;

  test('Blue reaches Blue and Red reaches Red across hosts over NVGRE; nothing crosses tenants; the router joins Blue\'s subnets; no record, no delivery', { timeout: 480_000 }, async (ctx) => {
    const t0 = Date.now();
    await Promise.all([t.a.ok('New-VMSwitch', 'Ext', '-NetAdapterName', 'Uplink'), t.b.ok('New-VMSwitch', 'Ext', '-NetAdapterName', 'Uplink')]);
    await Promise.all(NAMES.map(async (g) => {
      await on(g).ok('New-VM', g, '-MemoryStartupBytes', '128MB', '-SwitchName', 'Ext');
      await on(g).ok('Set-VMNetworkAdapter', '-VMName', g, '-VirtualSubnetId', String(GUESTS[g].vsid));
      mac[g] = (await on(g).json<{ MacAddress: string }>('Get-VMNetworkAdapter', '-VMName', g)).MacAddress;
      await on(g).ok('Start-VM', g);
    }));
    // The policy an orchestrator pushes: each host's PA, the same routes and records on both (the routes first: they name the records' routing domains).
    await Promise.all((['a', 'b'] as const).map(async (h) => {
      await t[h].ok('New-NetVirtualizationProviderAddress', '-ProviderAddress', PA[h], '-InterfaceIndex', '1', '-PrefixLength', '24');
      await Promise.all(([[BLUE, 5001, '10.0.0.0/24'], [BLUE, 5002, '10.0.1.0/24'], [RED, 6001, '10.0.0.0/24'], [BLUE, 5001, 'fd00:b::/64'], [BLUE, 5002, 'fd00:b:1::/64']] as const).map(([rdid, vsid, prefix]) =>
        t[h].ok('New-NetVirtualizationCustomerRoute', '-RoutingDomainID', rdid, '-VirtualSubnetID', String(vsid), '-DestinationPrefix', prefix, '-NextHop', prefix.includes(':') ? '::' : '0.0.0.0')));
      await Promise.all(NAMES.flatMap((g) => [GUESTS[g].ca, ...(V6[g] ? [ca6(g)] : [])].map((ca) => t[h].ok('New-NetVirtualizationLookupRecord', '-CustomerAddress', ca,
        '-VirtualSubnetID', String(GUESTS[g].vsid), '-MACAddress', mac[g], '-ProviderAddress', PA[GUESTS[g].host], '-Rule', 'TranslationMethodEncap', '-VMName', g))));
    }));
    await Promise.all(NAMES.map((g) => on(g).heartbeat(g)));
    const booted = Date.now();
    // 1458: the provider's 1500 less NVGRE's 42 bytes (bigger frames would be dropped as nvgre-mtu).
    await Promise.all(NAMES.map(async (g) => {
      const { ca, gw } = GUESTS[g];
      // IPv6 without duplicate address detection (the records are the addresses' owners): static, default route via the subnet's ::1, RAs
      // not listened to (no SLAAC address no record names, no RA default route racing the static one); or by SLAAC from the RA the link
      // coming up solicits (down first: an RS at boot may have found no policy yet).
      const conf = (k: string, v: number) => `echo ${v} >/proc/sys/net/ipv6/conf/eth0/${k}`;
      const pre = `${conf('dad_transmits', 0)} && ${conf('accept_ra', V6[g]?.ca === 'slaac' ? 1 : 0)} && ip link set eth0 down && `;
      const v6 = V6[g] && V6[g].ca !== 'slaac' ? ` && ip -6 addr add ${V6[g].ca}/64 dev eth0 && ip -6 route add default via ${V6[g].prefix.replace('::/64', '::1')}` : '';
      assert.equal((await on(g).sh(g, `${pre}ip link set eth0 mtu 1458 && ip addr add ${ca}/24 dev eth0 && ip link set eth0 up && ip route add default via ${gw}${v6}`)).code, 0);
    }));
    // SLAAC: the address appears once the RA is in (the guest polls its own table; nothing else to wait on).
    const auto = await on('blueA2').sh('blueA2', `for i in $(seq 1 100); do ip -6 addr show dev eth0 | grep -q '${ca6('blueA2')}' && break; sleep 0.1; done; ip -6 addr show dev eth0; ip -6 route`);
    console.log(`# blueA2 after SLAAC:\n${auto.out.trim().split('\n').map((l) => `#   ${l}`).join('\n')}`);
    // busybox writes the address uncompressed (fd00:b:1:0:…): compare them as addresses.
    const global = [...auto.out.matchAll(/inet6 ([0-9a-f:]+)\/64 scope global/g)].map((m) => formatIpv6(parseIpv6Address(m[1]!)));
    assert.deepEqual(global, [ca6('blueA2')], 'SLAAC address from the RA\'s prefix');
    assert.match(auto.out, /default via fe80::15:5dff:feff:ff01/, 'default route via the router\'s link-local address');
    await Promise.all([
      ...NAMES.map((g) => on(g).ok('Start-VMSwitchCapture', 'Ext', '-VMName', g, '-Path', join(dir, `${g}.pcap`))),
      ...(['a', 'b'] as const).map((h) => t[h].ok('Start-VMSwitchCapture', 'Ext', '-Path', join(dir, `switch-${h}.pcap`))),
    ]);

    // Each guest pings from its own shell, so the checks run side by side.
    const [blue, red, routed, routedAcross, redNoRoute, blue6, routed6] = await Promise.all([
      canPing('blueA', '10.0.0.11'), canPing('redB', '10.0.0.10'), canPing('blueA2', '10.0.0.10'), canPing('blueB', '10.0.1.10'), cannotPing('redA', '10.0.1.10'),
      canPing('blueA', `-6 ${ca6('blueB')}`), canPing('blueB', `-6 ${ca6('blueA2')}`),
    ]);
    assert.ok(await canPing('blueA', '-6 fd00:b::1'), 'Blue A pings its IPv6 gateway');
    // Hop limit 1 across subnets (the interface's: busybox ping -6 ignores -t): the router answers Time Exceeded (busybox ping prints no ICMPv6 error: the data path's count shows it).
    const icmp6 = async (): Promise<number> => {
      const ext = await d.a.api('GET', '/api/v1/switches/Ext/extensions');
      return (ext.json as { Name: string; Status: { icmpErrors?: Record<string, number> } }[]).find((x) => x.Name === 'vmhost.hnv')?.Status.icmpErrors?.['time-exceeded6'] ?? 0;
    };
    const exceeded = await icmp6();
    const hops = (n: number) => `echo ${n} >/proc/sys/net/ipv6/conf/eth0/hop_limit`;
    const hop1 = await on('blueA').sh('blueA', `${hops(1)}; ping -6 -c 1 -W 2 ${ca6('blueA2')}; r=$?; ${hops(64)}; exit $r`);
    assert.notEqual(hop1.code, 0, hop1.out);
    assert.equal(await icmp6(), exceeded + 1, `Time Exceeded sent for the hop-limit-1 ping: ${hop1.out}`);
    assert.ok(blue6, 'Blue A → Blue B over IPv6 (NS answered from the records, NVGRE)');
    assert.ok(routed6, 'Blue B 5001 → 5002 on A over IPv6: routed on B, then NVGRE');
    assert.ok(blue, 'Blue A → Blue B across hosts');
    assert.ok(red, 'Red B → Red A across hosts');
    assert.ok(routed, 'Blue 5002 → 5001 routed on host A');
    assert.ok(routedAcross, 'Blue 5001 on B → 5002 on A: routed on B, then NVGRE');
    assert.ok(redNoRoute, "Red's routing domain has no 10.0.1.0/24");
    assert.ok(await cannotPing('blueA', '10.0.0.99'), 'no lookup record for 10.0.0.99');

    console.log(`# five guests created, policy pushed, booted in ${((booted - t0) / 1000).toFixed(1)} s; addresses, captures and pings ${((Date.now() - booted) / 1000).toFixed(1)} s`);
    await Promise.all([...NAMES.map((g) => on(g).ok('Stop-VMSwitchCapture', 'Ext', '-VMName', g)), ...(['a', 'b'] as const).map((h) => t[h].ok('Stop-VMSwitchCapture', 'Ext'))]);

    // Drops by reason, as the data path counts them (Get-VMSwitchExtension's status): Blue A's ARP for 10.0.0.99 had no lookup record, Red A's packet no route.
    const ext = await d.a.api('GET', '/api/v1/switches/Ext/extensions');
    const hnv = (ext.json as { Name: string; Status: { drops?: Record<string, number> } }[]).find((x) => x.Name === 'vmhost.hnv');
    const drops = hnv?.Status.drops ?? {};
    assert.ok((drops['hnv-no-lookup-record'] ?? 0) >= 1, ext.text);
    assert.ok((drops['hnv-no-route'] ?? 0) >= 1, ext.text);

    // No frame of one tenant on the other's ports: every MAC a VM port saw is its tenant's, the gateway's or a group address.
    const tenant = (g: Guest): string => (g.startsWith('blue') ? 'blue' : 'red');
    for (const g of NAMES) {
      const frames = pcapFrames(await readFile(join(dir, `${g}.pcap`)));
      assert.ok(frames.length > 0, `${g} captured nothing`);
      for (const f of frames) {
        for (const m of [macOf(f, 0), macOf(f, 6)]) {
          const owner = NAMES.find((x) => mac[x] === m);
          if (owner) assert.equal(tenant(owner), tenant(g), `${g}'s port saw ${owner}'s MAC ${m}`);
        }
      }
    }

    // The provider side, as tshark reads what entered B's switch from A: GRE, key VSID << 8 | FlowID, PA to PA, the inner ICMP, nothing malformed.
    const tshark = async (...args: string[]): Promise<string[]> =>
      (await promisify(execFile)('tshark', ['-r', join(dir, 'switch-b.pcap'), ...args])).stdout.split('\n').filter((l) => l.trim() !== '');
    const gre = await tshark('-Y', 'gre && icmp', '-T', 'fields', '-e', 'gre.key', '-e', 'ip.src', '-e', 'ip.dst');
    console.log(`# tshark: ${gre.length} GRE frames with ICMP inside entered B's switch: ${gre.slice(0, 4).join(' | ')}`);
    const keys = gre.map((l) => Number(l.split('\t')[0]));
    assert.ok(keys.some((k) => k >>> 8 === 5001), `no GRE key 5001 << 8 | flow in ${keys.map((k) => k.toString(16)).join(' ')}`);
    assert.ok(keys.some((k) => k >>> 8 === 6001), 'Red crossed as 6001');
    assert.ok(keys.every((k) => [5001, 5002, 6001].includes(k >>> 8)));
    assert.ok(gre.every((l) => l.split('\t')[1]!.startsWith(`${PA.a},`) && l.split('\t')[2]!.startsWith(`${PA.b},`)), 'outer PA A → PA B');
    assert.deepEqual(await tshark('-Y', '_ws.malformed'), [], 'tshark finds nothing malformed');

    // The booted guests serve the gateway's test too (a host vNIC needs root, as test/host-nic.test.ts).
    await ctx.test('the in-daemon gateway: Blue reaches the datacenter address through NAT; Red does not', { skip: tapSkip }, async () => {
      const g0 = Date.now();
      const a = t.a;
      const routerDrops = async (): Promise<number> => {
        const x = (await d.a.api('GET', '/api/v1/switches/Ext/extensions')).json as { Name: string; Status: { drops?: Record<string, number> } }[];
        return x.find((e) => e.Name === 'vmhost.hnv')?.Status.drops?.['hnv-no-route'] ?? 0;
      };
      type Gw = { RoutingDomainID: string; Translations: number; ToDatacenter: number; FromDatacenter: number; Drops: Record<string, number>; Status: string };
      const gw = (change: Record<string, string> = {}): string[] => ['New-VmhostNetVirtualizationGateway', ...Object.entries({
        RoutingDomainID: BLUE, VirtualSubnetID: '5001', CustomerAddress: GATEWAY.ca, ExternalSwitchName: 'Ext', DatacenterSwitchName: 'DC', ExternalAddress: EXTERNAL, ...change,
      }).flatMap(([k, v]) => [`-${k}`, v])];
      // The datacenter switch and its host vNIC's address, beside Blue's default route to the gateway's CA and its lookup record.
      await Promise.all([
        (async () => {
          await a.ok('New-VMSwitch', '-Name', 'DC', '-SwitchType', 'Internal');
          datacenterIf = (await a.json<{ InterfaceName: string }>('Get-VMNetworkAdapter', '-ManagementOS', '-Name', 'DC')).InterfaceName;
          await promisify(execFile)('ip', ['addr', 'add', `${DATACENTER}/24`, 'dev', datacenterIf]);
        })(),
        (async () => {
          await a.ok('New-NetVirtualizationCustomerRoute', '-RoutingDomainID', BLUE, '-VirtualSubnetID', '5001', '-DestinationPrefix', '0.0.0.0/0', '-NextHop', GATEWAY.ca);
          await a.ok('New-NetVirtualizationLookupRecord', '-CustomerAddress', GATEWAY.ca, '-VirtualSubnetID', '5001', '-MACAddress', GATEWAY.mac, '-ProviderAddress', PA.a,
            '-Rule', 'TranslationMethodEncap', '-VMName', 'vmhost-gateway');
        })(),
      ]);
      await Promise.all([
        a.fails(/DatacenterSwitchName: no virtual switch named 'nope'/, ...gw({ DatacenterSwitchName: 'nope' })),
        a.fails(/DatacenterSwitchName: switch 'Ext' is External, not Internal/, ...gw({ DatacenterSwitchName: 'Ext' })),
        a.fails(/RoutingDomainID: routing domain .* has no customer route in virtual subnet 6001/, ...gw({ VirtualSubnetID: '6001' })),
        a.fails(/CustomerAddress: no lookup record for 10\.0\.0\.253/, ...gw({ CustomerAddress: '10.0.0.253' })),
      ]);
      await a.ok(...gw({ Mode: 'Nat' }));

      const redRefused = await routerDrops();
      const [blue, red, hostIn] = await Promise.all([
        canPing('blueA', DATACENTER), cannotPing('redA', DATACENTER),
        // Unsolicited from the datacenter: the external address answers ARP, but no translation lets the echo in.
        promisify(execFile)('busybox', ['ping', '-c', '1', '-W', '1', EXTERNAL]).then(() => true, () => false),
        a.fails(/RoutingDomainID: the gateway already serves/, ...gw()),
      ]);
      assert.ok(blue, "Blue's guest → the datacenter address, NATed by the gateway on A");
      assert.ok(red, "Red's guest gets nothing: its routing domain has no route out");
      assert.ok(!hostIn, 'the host reached Blue through the gateway');
      assert.ok((await routerDrops()) > redRefused, "Red's ping refused and counted (hnv-no-route)");
      const [shown] = [await a.json<Gw | Gw[]>('Get-VmhostNetVirtualizationGateway')].flat();
      assert.ok(shown && shown.Status === 'Ok' && shown.Translations >= 1 && shown.ToDatacenter >= 1 && shown.FromDatacenter >= 1, JSON.stringify(shown));
      assert.ok((shown.Drops['gw-no-translation'] ?? 0) >= 1, JSON.stringify(shown.Drops));

      await a.ok('Remove-VmhostNetVirtualizationGateway', BLUE);
      assert.deepEqual((await d.a.api('GET', '/api/v1/host/network-virtualization/gateways')).json, []);
      assert.ok(await cannotPing('blueA', DATACENTER), 'no gateway port after Remove-');
      console.log(`# gateway: set up, pinged, counted and removed in ${((Date.now() - g0) / 1000).toFixed(1)} s`);
    });

    // IPv6 through the gateway (after the IPv4 one took its ports off): Blue and Red both NAT mode, Red given Blue's very IPv6 address.
    await ctx.test('the gateway for IPv6: Blue and Red, with one address, both reach the datacenter by NPTv6 from their own prefixes; Red cannot reach Blue; Packet Too Big reaches the guest', { skip: tapSkip }, async () => {
      const g0 = Date.now();
      const a = t.a;
      const exec = promisify(execFile);
      const gwStatus = async (): Promise<{ drops: Record<string, number> }> => {
        const [x] = [await a.json<{ Drops: Record<string, number> } | { Drops: Record<string, number> }[]>('Get-VmhostNetVirtualizationGateway')].flat();
        return { drops: x?.Drops ?? {} };
      };
      // The datacenter: the host vNIC gets DC6 and routes each tenant's external prefix to the gateway's external address for it.
      await exec('sh', ['-c', `echo 0 >/proc/sys/net/ipv6/conf/${datacenterIf}/disable_ipv6 && ip -6 addr add ${DC6}/64 dev ${datacenterIf} nodad`
        + ` && ip -6 route add ${GW6.blue.prefix} via ${GW6.blue.external} dev ${datacenterIf} && ip -6 route add ${GW6.red.prefix} via ${GW6.red.external} dev ${datacenterIf}`]);
      // Red: Blue's prefix and Blue A's very address on Red A, a default route to its ::1; both domains' ::/0 to the gateway's CA, whose records carry its ports' MACs.
      await Promise.all([
        a.ok('New-NetVirtualizationCustomerRoute', '-RoutingDomainID', RED, '-VirtualSubnetID', '6001', '-DestinationPrefix', 'fd00:b::/64', '-NextHop', '::'),
        a.ok('New-NetVirtualizationLookupRecord', '-CustomerAddress', GATEWAY.ca, '-VirtualSubnetID', '6001', '-MACAddress', GATEWAY.redMac, '-ProviderAddress', PA.a, '-Rule', 'TranslationMethodEncap', '-VMName', 'vmhost-gateway'),
        a.ok('New-NetVirtualizationLookupRecord', '-CustomerAddress', ca6('blueA'), '-VirtualSubnetID', '6001', '-MACAddress', mac.redA, '-ProviderAddress', PA.a, '-Rule', 'TranslationMethodEncap', '-VMName', 'redA'),
        ...([['5001', BLUE, GATEWAY.mac], ['6001', RED, GATEWAY.redMac]] as const).flatMap(([vsid, rdid, m]) => [
          a.ok('New-NetVirtualizationCustomerRoute', '-RoutingDomainID', rdid, '-VirtualSubnetID', vsid, '-DestinationPrefix', '::/0', '-NextHop', GW6.ca),
          a.ok('New-NetVirtualizationLookupRecord', '-CustomerAddress', GW6.ca, '-VirtualSubnetID', vsid, '-MACAddress', m, '-ProviderAddress', PA.a, '-Rule', 'TranslationMethodEncap', '-VMName', 'vmhost-gateway'),
        ]),
      ]);
      assert.equal((await on('redA').sh('redA', `ip -6 addr add ${ca6('blueA')}/64 dev eth0 && ip -6 route add default via fd00:b::1`)).code, 0);
      const gw6 = (rdid: string, vsid: string, who: 'blue' | 'red', change: Record<string, string> = {}): string[] => ['New-VmhostNetVirtualizationGateway', ...Object.entries({
        RoutingDomainID: rdid, VirtualSubnetID: vsid, CustomerAddress: GATEWAY.ca, ExternalSwitchName: 'Ext', DatacenterSwitchName: 'DC', ExternalAddress: EXTERNAL,
        CustomerIPv6Address: GW6.ca, ExternalIPv6Address: GW6[who].external, InternalIPv6Prefix: 'fd00:b::/32', ExternalIPv6Prefix: GW6[who].prefix, ...change,
      }).flatMap(([k, v]) => [`-${k}`, v])];
      await a.fails(/ExternalIPv6Prefix: fd15:b::\/48 is not as long as fd00:b::\/32/, ...gw6(BLUE, '5001', 'blue', { ExternalIPv6Prefix: 'fd15:b::/48' }));
      // Blue's datacenter MTU 1400, below the guest's 1458: a 1448-byte packet must earn the guest Packet Too Big.
      await a.ok(...gw6(BLUE, '5001', 'blue', { DatacenterIPv6Mtu: '1400' }));
      await a.ok(...gw6(RED, '6001', 'red'));
      await a.ok('Start-VMSwitchCapture', 'DC', '-Path', join(dir, 'dc.pcap'));

      const [blue, red] = await Promise.all([canPing('blueA', `-6 ${DC6}`), canPing('redA', `-6 ${DC6}`)]);
      assert.ok(blue, "Blue A → the datacenter's IPv6 address through NPTv6");
      assert.ok(red, 'Red A, with the same address, → the datacenter too, from its own prefix');
      // Red toward Blue's translated address: refused by the gateway (another domain's external prefix).
      const blueOutside = new Uint8Array(parseIpv6Address(ca6('blueA')));
      new Nptv6(parseIpv6Address('fd00:b::'), parseIpv6Address(GW6.blue.prefix.split('/')[0]!), 32).outbound(blueOutside, 0);
      const hairpin = (await gwStatus()).drops['gw-hairpin'] ?? 0;
      assert.ok(await cannotPing('redA', `-6 ${formatIpv6(blueOutside)}`), "Red reached Blue's translated address");
      assert.ok(((await gwStatus()).drops['gw-hairpin'] ?? 0) > hairpin, 'refused and counted as gw-hairpin');
      // Path MTU: the first 1448-byte echo earns Packet Too Big (1400) from the gateway; the guest then fragments, and the next ones get through.
      const tooBig = (await gwStatus()).drops['gw-too-big'] ?? 0;
      const first = await on('blueA').sh('blueA', `ping -6 -c 1 -W 2 -s 1400 ${DC6}`);
      const after = await on('blueA').sh('blueA', `ping -6 -c 2 -W 2 -s 1400 ${DC6}`);
      assert.ok(((await gwStatus()).drops['gw-too-big'] ?? 0) > tooBig, `Packet Too Big sent: ${first.out}`);
      assert.equal(after.code, 0, `the guest learned the path MTU and fragments: ${after.out}`);
      await a.ok('Stop-VMSwitchCapture', 'DC');

      // What the datacenter saw: echo requests from both tenants' external prefixes (never fd00:b::), hop limit 64 − router − gateway, good checksums, nothing malformed.
      const tshark = async (...args: string[]): Promise<string[]> =>
        (await exec('tshark', ['-r', join(dir, 'dc.pcap'), ...args])).stdout.split('\n').filter((l) => l.trim() !== '');
      const requests = await tshark('-Y', 'icmpv6.type == 128', '-T', 'fields', '-e', 'ipv6.src', '-e', 'ipv6.hlim', '-e', 'icmpv6.checksum.status');
      console.log(`# tshark on the datacenter switch: ${requests.length} echo requests: ${requests.slice(0, 3).join(' | ')}`);
      const sources = requests.map((l) => l.split('\t')[0]!);
      assert.ok(sources.some((x) => x.startsWith('fd15:b:')) && sources.some((x) => x.startsWith('fd15:e:')), sources.join(' '));
      assert.ok(sources.every((x) => !x.startsWith('fd00:')), 'no tenant address leaves untranslated');
      assert.ok(requests.filter((l) => l.split('\t')[2] !== '').every((l) => l.split('\t')[1] === '62' && l.split('\t')[2] === '1'), requests.join(' | '));
      assert.ok((await tshark('-Y', 'icmpv6.type == 135 && icmpv6.nd.ns.target_address == ' + GW6.blue.external)).length >= 1, 'the host asked for the gateway by NS');
      assert.deepEqual(await tshark('-Y', '_ws.malformed'), [], 'tshark finds nothing malformed');

      await a.ok('Remove-VmhostNetVirtualizationGateway', '-RoutingDomainID', RED);
      await a.ok('Remove-VmhostNetVirtualizationGateway', '-RoutingDomainID', BLUE);
      console.log(`# IPv6 gateway: set up, pinged, PMTU, captured and removed in ${((Date.now() - g0) / 1000).toFixed(1)} s`);
    });

    await ctx.test('policy follows a moved VM: Blue\'s 5002 guest moves A → B keeping its CA; both hosts re-point its record; Blue A reaches it again', async () => {
      const m0 = Date.now();
      const cliConfig = await mkdtemp(join(tmpdir(), 'vmhost-hnv-cli-'));
      const cliA = (...args: string[]) => runCli(args, { VMHOST_URL: d.a.url, VMHOST_TOKEN: d.a.token, VMHOST_CONFIG_DIR: cliConfig });
      const bDest = `127.0.0.1:${d.b.port}`;
      await Promise.all([t.a.ok('Enable-VMMigration'), t.b.ok('Enable-VMMigration'), cliA('Set-VMHostCredential', '-ComputerName', bDest, '-Token', d.b.token)]);
      // Blue A pings the moving guest every 100 ms through the move (routed on A, then over NVGRE to B once A's record says B).
      assert.equal((await t.a.sh('blueA', 'setsid ping -i 0.1 -W 1 10.0.1.10 </dev/null >/tmp/move.log 2>&1 & sleep 1')).code, 0);
      const moved = await cliA('Move-VM', 'blueA2', '-DestinationHost', bDest);
      assert.equal(moved.code, 0, moved.stderr);
      const returned = Date.now();
      // Right after Move-VM: one ping must get through (an upper bound on records → connectivity, the agent's own latency included).
      assert.ok(await canPing('blueA', '10.0.1.10'), 'Blue A → the moved guest over NVGRE to B');
      const reached = Date.now();
      const log = (await t.a.sh('blueA', 'kill $(pidof ping) 2>/dev/null; cat /tmp/move.log')).out;
      await rm(cliConfig, { recursive: true, force: true });
      type Rec = { ProviderAddress: string; MACAddress: string };
      for (const h of ['a', 'b'] as const) {
        const [r] = [await t[h].json<Rec | Rec[]>('Get-NetVirtualizationLookupRecord', '-CustomerAddress', '10.0.1.10', '-VirtualSubnetID', '5002')].flat();
        assert.deepEqual(r && [r.ProviderAddress, r.MACAddress], [PA.b, mac.blueA2], `host ${h}'s record of the moved guest`);
      }
      assert.ok(await canPing('blueB', '10.0.1.10'), 'Blue B → the moved guest, now routed on B alone');
      // When A's record changed (its event), against when the first ping after Move-VM came back.
      const events = (await readFile(join(d.a.dataDir, 'events.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { Time: string; Code: string });
      const changed = Date.parse(events.filter((e) => e.Code === 'HNV_RECORDS_MOVED').at(-1)!.Time);
      const b = pingBlackout(log, 100);
      assert.ok(b.replies >= 10, log);
      console.log(`# moved VM: A's record re-pointed ${returned - changed} ms before Move-VM returned; a ping from Blue A answered ${reached - changed} ms after A's record changed `
        + `(upper bound, guest-agent latency included); the pinging guest's longest gap across the move ${b.blackoutMs} ms (${b.replies} replies); ${((Date.now() - m0) / 1000).toFixed(1)} s in all`);
    });
  });
});
