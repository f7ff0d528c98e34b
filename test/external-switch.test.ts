// External switches across two hosts, with real guests, through the CLI: two daemons whose
// "physical" adapters (vmhostd --net-adapter) are UDP tunnels pointing at each other on
// 127.0.0.1; an External switch on each (New-VMSwitch -NetAdapterName) and one guest per
// host. The guests ping across the tunnel, access VLANs hold across it (tagged on the wire,
// which tshark sees inside the datagrams), a SIGKILLed daemon relaunched without its adapter
// keeps the switch but reports it Degraded, and with the adapter back the ping works again.
// -AllowManagementOS gives host A a vNIC that pings the guest on host B; Set-VMSwitch re-binds
// and converts; bad input gets one-line errors.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TestDaemon, freeUdpPort, waitFor } from './support/daemon.ts';
import { bootGuestsOnSwitch, cliTools, type CliTools } from './support/cli-tools.ts';
import { captureLo } from './support/lo-capture.ts';

const IP = (n: number) => `10.88.0.${n}`;
const adapterFlag = (name: string, local: number, remote: number) => ['--net-adapter', `${name}=udp:127.0.0.1:${local}->127.0.0.1:${remote}`];

async function distinctUdpPorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freeUdpPort());
  return [...ports];
}

/** tshark on lo for one UDP port, until stop(); then the datagrams decoded with the tunnel's payload read as Ethernet. */
async function captureTunnel(port: number): Promise<{ stop(): Promise<{ datagrams: number; icmp: string[]; malformed: number }> }> {
  const cap = await captureLo(`udp port ${port}`);
  return {
    stop: () => cap.stop(async (read) => {
      const tunnel = (...args: string[]) => read('-d', `udp.port==${port},eth`, ...args);
      return {
        datagrams: (await tunnel('-Y', `udp.port==${port}`)).length,
        // ip.src/ip.dst occur twice (the tunnel's header, then the guest's): -E occurrence=l takes the guest's.
        icmp: await tunnel('-Y', 'icmp', '-T', 'fields', '-E', 'occurrence=l', '-e', 'vlan.id', '-e', 'ip.src', '-e', 'ip.dst', '-e', 'icmp.type'),
        malformed: (await tunnel('-Y', '_ws.malformed')).length,
      };
    }),
  };
}

describe('External switches: two hosts joined by a UDP "physical" network', () => {
  let a: TestDaemon;
  let b: TestDaemon;
  let ta: CliTools;
  let tb: CliTools;
  let pa = 0;
  let bArgs: string[] = [];
  before(async () => {
    const [portA, portB, spare, nowhere] = (await distinctUdpPorts(4)) as [number, number, number, number];
    pa = portA;
    bArgs = adapterFlag('Uplink', portB, portA);
    [a, b] = await Promise.all([TestDaemon.start(undefined, [...adapterFlag('Uplink', portA, portB), ...adapterFlag('Spare', spare, nowhere)]), TestDaemon.start(undefined, bArgs)]);
    ta = cliTools(a);
    tb = cliTools(b);
  });
  const taps = new Set<string>();
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    // SIGKILLed daemons leave persistent taps: delete the host vNIC this test made.
    for (const t of taps) await promisify(execFile)('ip', ['link', 'del', t]).catch(() => undefined);
  });

  /** Can `vm` (on the host `t` drives) ping `ip`, with a fresh ARP entry? A second try forgives one lost ARP when a ping is expected. */
  const canPing = async (t: CliTools, vm: string, ip: string): Promise<boolean> => {
    await t.sh(vm, 'ip neigh flush dev eth0');
    return (await t.sh(vm, `ping -c 1 -W 2 ${ip} >/dev/null 2>&1 || ping -c 1 -W 2 ${ip}`)).code === 0;
  };
  /** Expected to fail: one try is the stricter check, and half the wait. */
  const cannotPing = async (t: CliTools, vm: string, ip: string): Promise<boolean> => {
    await t.sh(vm, 'ip neigh flush dev eth0');
    return (await t.sh(vm, `ping -c 1 -W 2 ${ip}`)).code !== 0;
  };

  test('a malformed --net-adapter stops the daemon with a one-line error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vmhost-t-'));
    try {
      await assert.rejects(TestDaemon.start(dir, ['--net-adapter', 'Uplink=udp:127.0.0.1->127.0.0.1:1']), (e: Error) => {
        const msg = e.message.replace(/^vmhostd exited 1: /, '').trim();
        assert.match(msg, /^vmhostd: --net-adapter: 'Uplink=udp:127\.0\.0\.1->127\.0\.0\.1:1' is not NAME=udp:LOCALADDR:LOCALPORT->REMOTEADDR:REMOTEPORT$/);
        return true;
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('Get-NetAdapter; New-VMSwitch -NetAdapterName makes an External switch; bad bindings are refused', async () => {
    const nics = await ta.json<{ Name: string; Status: string; InterfaceDescription: string; VMSwitchName: string | null }[]>('Get-NetAdapter');
    assert.deepEqual(nics.map((n) => [n.Name, n.Status, n.VMSwitchName]), [['Uplink', 'Up', null], ['Spare', 'Up', null]]);
    await ta.ok('New-VMSwitch', '-Name', 'Ext', '-NetAdapterName', 'Uplink', '-AllowManagementOS', '$false');
    await tb.ok('New-VMSwitch', 'Ext', '-NetAdapterName', 'uplink');
    const sw = await ta.json<Record<string, unknown>>('Get-VMSwitch', 'Ext');
    assert.equal(sw.SwitchType, 'External');
    assert.equal(sw.NetAdapterName, 'Uplink');
    assert.equal(sw.NetAdapterInterfaceDescription, nics[0]!.InterfaceDescription);
    assert.match(String(sw.NetAdapterInterfaceDescription), /^vmhost UDP tunnel 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+$/);
    assert.equal(sw.Status, 'OK');
    assert.match(await ta.ok('Get-VMSwitch'), /Ext\s+External\s+vmhost UDP tunnel/);
    assert.equal((await ta.json<{ VMSwitchName: string }>('Get-NetAdapter', 'Uplink')).VMSwitchName, 'Ext');

    // None of these changes anything, so they run side by side.
    await Promise.all([
      ta.fails(/NetAdapterName: no network adapter 'Nope'; this host has 'Uplink', 'Spare'/, 'New-VMSwitch', 'X', '-NetAdapterName', 'Nope'),
      ta.fails(/'Uplink' is already bound to the External switch 'Ext'/, 'New-VMSwitch', 'X', '-NetAdapterName', 'Uplink'),
      ta.fails(/NetAdapterName: an External switch needs -NetAdapterName/, 'New-VMSwitch', 'X', '-SwitchType', 'External'),
      ta.fails(/SwitchType: -NetAdapterName makes an External switch, not Private/, 'New-VMSwitch', 'X', '-SwitchType', 'Private', '-NetAdapterName', 'Spare'),
      ta.fails(/AllowManagementOS: a Private switch has no management-OS network adapters/, 'Set-VMSwitch', 'Ext', '-SwitchType', 'Private', '-AllowManagementOS', '$true'),
      ta.fails(/SwitchType: give -SwitchType Private or Internal, or -NetAdapterName/, 'New-VMSwitch', 'X'),
      ta.fails(/No MSFT_NetAdapter objects found with property 'Name' equal to 'Nope'/, 'Get-NetAdapter', 'Nope'),
    ]);
    assert.equal((await ta.json<unknown[]>('Get-VMSwitch')).length, 1, 'no half-made switch left behind');
  });

  test('guests on two hosts ping across the tunnel; VLANs hold across it; daemon SIGKILL, missing adapter, relaunch; Set-VMSwitch', { timeout: 180_000 }, async () => {
    const t0 = Date.now();
    const hosts: [CliTools, string, number][] = [[ta, 'x1', 1], [tb, 'x2', 2]];
    console.log(`# both guests up in ${await bootGuestsOnSwitch(hosts.map(([t, vm, n]) => [t, vm, IP(n)] as const), 'Ext')} ms`);

    // Untagged, then both in access VLAN 10, then 10 vs 20, while tshark watches host A's end of the tunnel.
    const cap = await captureTunnel(pa);
    assert.ok(await canPing(ta, 'x1', IP(2)), 'x1 (host A) pings x2 (host B)');
    assert.ok(await canPing(tb, 'x2', IP(1)), 'x2 pings x1');
    for (const [t, vm] of hosts) await t.ok('Set-VMNetworkAdapterVlan', '-VMName', vm, '-Access', '-VlanId', '10');
    assert.ok(await canPing(ta, 'x1', IP(2)), 'both in VLAN 10: ping across the tunnel');
    await tb.ok('Set-VMNetworkAdapterVlan', '-VMName', 'x2', '-Access', '-VlanId', '20');
    assert.ok(await cannotPing(ta, 'x1', IP(2)), 'VLAN 10 on host A does not reach VLAN 20 on host B');
    await tb.ok('Set-VMNetworkAdapterVlan', '-VMName', 'x2', '-Access', '-VlanId', '10');
    // Stopped only now: tshark drops what its capture buffer still holds when interrupted, and the VLAN 20 check gave it seconds to write.
    const seen = await cap.stop();
    console.log(`# tshark: ${seen.datagrams} datagrams on udp port ${pa}, ${seen.icmp.length} ICMP inside (vlan,src,dst,type): ${seen.icmp.join(' | ')}`);
    assert.equal(seen.malformed, 0, 'tshark finds nothing malformed');
    assert.ok(seen.icmp.filter((l) => l.startsWith(`\t${IP(1)}\t${IP(2)}\t8`)).length >= 1, 'an untagged echo request x1 → x2 inside a datagram');
    assert.ok(seen.icmp.filter((l) => l.startsWith(`\t${IP(2)}\t${IP(1)}\t0`)).length >= 1, 'an untagged echo reply x2 → x1');
    assert.ok(seen.icmp.filter((l) => l.startsWith(`10\t${IP(1)}\t${IP(2)}\t8`)).length >= 1, 'an echo request tagged VLAN 10 on the tunnel');
    assert.ok(seen.icmp.filter((l) => l.startsWith(`10\t${IP(2)}\t${IP(1)}\t0`)).length >= 1, 'an echo reply tagged VLAN 10');

    // Host B SIGKILLed and relaunched without its adapter: the switch stays, Degraded, with an event.
    await b.kill();
    b.args = [];
    await b.launch();
    const degraded = await tb.json<Record<string, unknown>>('Get-VMSwitch', 'Ext');
    assert.deepEqual([degraded.SwitchType, degraded.NetAdapterName, degraded.Status, degraded.Ports], ['External', 'Uplink', 'Degraded', 1]);
    assert.match(await readFile(join(b.dataDir, 'events.jsonl'), 'utf8'), /SWITCH_NET_ADAPTER_MISSING.*External switch 'Ext' is degraded: network adapter 'Uplink' is not declared on this host \(adapters: none\)/);
    // ... and with the adapter declared again, the ping works again.
    await b.kill();
    b.args = bArgs;
    const t1 = Date.now();
    await b.launch();
    assert.ok(await waitFor('ping after host B relaunch', 30_000, () => canPing(ta, 'x1', IP(2))), 'ping after the relaunch');
    console.log(`# host B relaunched with its adapter: ping across hosts works ${Date.now() - t1} ms after the launch began`);
    assert.equal((await tb.json<{ Status: string }>('Get-VMSwitch', 'Ext')).Status, 'OK');
    const file = JSON.parse(await readFile(join(b.dataDir, 'switches', 'Ext.json'), 'utf8')) as { netAdapterName: string; config: { settings: Record<string, unknown> } };
    assert.equal(file.netAdapterName, 'Uplink', 'the switch file names the adapter');
    assert.equal(file.config.settings.uplink, undefined, 'and holds no endpoints');

    // The host itself on the External switch (-AllowManagementOS): host A's vNIC reaches the guest on host B through the tunnel.
    for (const [t, vm] of hosts) await t.ok('Set-VMNetworkAdapterVlan', '-VMName', vm, '-Untagged'); // the host's vNIC is untagged
    await ta.ok('Set-VMSwitch', 'Ext', '-AllowManagementOS', '$true');
    const hostNic = await ta.json<{ InterfaceName: string; SwitchName: string }>('Get-VMNetworkAdapter', '-ManagementOS', '-Name', 'Ext');
    taps.add(hostNic.InterfaceName);
    assert.equal((await ta.json<{ AllowManagementOS: boolean }>('Get-VMSwitch', 'Ext')).AllowManagementOS, true);
    await promisify(execFile)('ip', ['addr', 'add', `${IP(100)}/24`, 'dev', hostNic.InterfaceName]);
    const hostPing = () => promisify(execFile)('busybox', ['ping', '-c', '1', '-W', '2', IP(2)]).then(() => true, () => false);
    assert.ok(await waitFor('host A pings x2 on host B', 20_000, hostPing), 'the host\'s vNIC on the External switch reaches a guest on the other host');
    await ta.ok('Set-VMSwitch', 'Ext', '-AllowManagementOS', '$false');
    await assert.rejects(promisify(execFile)('ip', ['link', 'show', hostNic.InterfaceName]), '-AllowManagementOS $false deletes the interface');
    taps.delete(hostNic.InterfaceName);

    // Set-VMSwitch on host A: re-bind to the spare adapter (the tunnel to B is gone), back (it works again), then Private.
    await ta.ok('Set-VMSwitch', 'Ext', '-NetAdapterName', 'Spare');
    assert.deepEqual((await ta.json<{ Name: string; VMSwitchName: string | null }[]>('Get-NetAdapter')).map((n) => [n.Name, n.VMSwitchName]), [['Uplink', null], ['Spare', 'Ext']]);
    assert.ok(await cannotPing(ta, 'x1', IP(2)), 'no path to host B over the spare adapter');
    await ta.ok('Set-VMSwitch', 'Ext', '-NetAdapterName', 'Uplink');
    assert.ok(await canPing(ta, 'x1', IP(2)), 'ping once re-bound to the adapter facing host B');
    await ta.fails(/SwitchType: -NetAdapterName makes an External switch, not Private/, 'Set-VMSwitch', 'Ext', '-SwitchType', 'Private', '-NetAdapterName', 'Spare');
    await ta.ok('Set-VMSwitch', 'Ext', '-SwitchType', 'Private');
    const priv = await ta.json<Record<string, unknown>>('Get-VMSwitch', 'Ext');
    assert.deepEqual([priv.SwitchType, priv.NetAdapterName, priv.Status], ['Private', null, 'OK']);
    assert.ok(await cannotPing(ta, 'x1', IP(2)), 'a Private switch has no uplink');
    console.log(`# whole scenario ${Date.now() - t0} ms`);
  });
});
