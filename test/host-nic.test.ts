// The host's own vNIC on an Internal switch, through the daemon and the CLI with a real guest:
// New-VMSwitch -SwitchType Internal creates a tap; the test puts an address on it; the guest
// and the host ping each other; Get-VMNetworkAdapter -ManagementOS shows the interface and the
// address; Set-VMNetworkAdapterVlan -ManagementOS puts the host's port in a VLAN, ACLs
// (Deny, Meter, extended) and Set-VMNetworkAdapter -ManagementOS apply to it; after a
// daemon SIGKILL + restart the relay re-attaches to the persistent tap (the
// address still on it) and both directions ping again; Add-/Remove-VMNetworkAdapter
// -ManagementOS; one-line errors; Remove-VMSwitch -Force deletes the interface.
// Needs root and /dev/net/tun (skipped otherwise). Host pings use busybox (no ping package needed).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { TestDaemon, waitFor } from './support/daemon.ts';
import { cliTools } from './support/cli-tools.ts';
import { freeTestNet, tapSkip as skip } from '../src/host/tap-test-support.ts';

const NET = freeTestNet(175, 75); // src/host/tapd.test.ts takes 100–174
const HOST_IP = `${NET}.1`;
const GUEST_IP = `${NET}.2`;

interface HostNic { Name: string; SwitchName: string; MacAddress: string; InterfaceName: string; Status: string[]; IPAddresses: string[]; IsManagementOs: boolean }

function run(cmd: string, ...args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((ok) => execFile(cmd, args, { timeout: 15_000 }, (err, stdout, stderr) => ok({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr })));
}

describe('host vNIC on an Internal switch', { skip }, () => {
  let d: TestDaemon;
  const interfaces = new Set<string>();
  let t: ReturnType<typeof cliTools>;
  before(async () => { d = await TestDaemon.start(); t = cliTools(d); });
  after(async () => {
    await d?.stop(); // SIGKILL: persistent taps stay, so delete what this test created
    for (const i of interfaces) await run('ip', 'link', 'del', i);
  });

  const ok = (...args: string[]) => t.ok(...args);
  const fails = (re: RegExp, ...args: string[]) => t.fails(re, ...args);
  const json = <T>(...args: string[]) => t.json<T>(...args);
  const sh = (vm: string, script: string) => t.sh(vm, script);
  const guestPingsHost = async () => (await sh('h1', `ping -c 1 -W 2 ${HOST_IP}`)).code === 0;
  const hostPingsGuest = async () => (await run('busybox', 'ping', '-c', '1', '-W', '2', GUEST_IP)).code === 0;
  const bothWays = () => waitFor('host ↔ guest ping', 30_000, async () => (await hostPingsGuest()) && (await guestPingsHost()));

  test('host ↔ guest over the host vNIC, across a daemon SIGKILL; management-OS adapters; removal deletes the interface', { timeout: 240_000 }, async () => {
    await ok('New-VMSwitch', '-Name', 'HN', '-SwitchType', 'Internal');
    const [nic, ...others] = await json<HostNic[]>('Get-VMNetworkAdapter', '-ManagementOS');
    assert.ok(nic && others.length === 0, 'one host vNIC, named after the switch');
    const ifname = nic.InterfaceName;
    interfaces.add(ifname);
    assert.equal(nic.Name, 'HN');
    assert.equal(nic.SwitchName, 'HN');
    assert.equal(nic.IsManagementOs, true);
    assert.match(ifname, /^vmh[0-9a-f]{8}$/);
    assert.match(nic.MacAddress, /^00155D[0-9A-F]{6}$/);
    assert.equal((await run('ip', 'addr', 'add', `${HOST_IP}/24`, 'dev', ifname)).code, 0);

    await ok('New-VM', 'h1', '-MemoryStartupBytes', '256MB');
    await ok('Connect-VMNetworkAdapter', '-VMName', 'h1', '-SwitchName', 'HN');
    await ok('Start-VM', 'h1');
    await waitFor('h1 heartbeat', 90_000, async () => ((await d.api('GET', '/api/v1/vms/h1')).json as { Heartbeat: string }).Heartbeat === 'OK');
    assert.equal((await sh('h1', `ip addr add ${GUEST_IP}/24 dev eth0 && ip link set eth0 up`)).code, 0);
    assert.ok(await bothWays(), 'guest pings the host and the host pings the guest');

    const shown = await json<HostNic>('Get-VMNetworkAdapter', '-ManagementOS', '-Name', 'HN');
    assert.ok(shown.IPAddresses.includes(HOST_IP), `the kernel's address is shown: ${JSON.stringify(shown.IPAddresses)}`);
    assert.deepEqual(shown.Status, ['Ok']);
    assert.match(await ok('Get-VMNetworkAdapter', '-ManagementOS'), new RegExp(`HN\\s+HN\\s+${nic.MacAddress}\\s+${ifname}\\s+Ok\\s+\\{${HOST_IP.replace(/\./g, '\\.')}`));
    const sw = await json<{ Ports: number; ConnectedPorts: number }>('Get-VMSwitch', 'HN');
    assert.deepEqual([sw.Ports, sw.ConnectedPorts], [2, 2], 'the host vNIC is a port of the switch');

    // The host's port takes VLAN policy like a VM's (kept with the switch: the restart below still needs it).
    await ok('Set-VMNetworkAdapterVlan', '-ManagementOS', '-VMNetworkAdapterName', 'HN', '-Access', '-VlanId', '10');
    assert.equal(await hostPingsGuest(), false, 'host in VLAN 10, guest untagged: no ping');
    await ok('Set-VMNetworkAdapterVlan', '-VMName', 'h1', '-Access', '-VlanId', '10');
    assert.ok(await bothWays(), 'both in VLAN 10');
    const vlan = await json<{ ParentAdapter: string; OperationMode: string; AccessVlanId: number }>('Get-VMNetworkAdapterVlan', '-ManagementOS', '-VMNetworkAdapterName', 'HN');
    assert.deepEqual([vlan.ParentAdapter, vlan.OperationMode, vlan.AccessVlanId], ['HN', 'Access', 10]);
    await fails(/No management-OS network adapter named 'nope'/, 'Set-VMNetworkAdapterVlan', '-ManagementOS', '-VMNetworkAdapterName', 'nope', '-Untagged');

    // The host's port takes ACLs and guards too: a Deny by the guest's address cuts the ping, a
    // Meter rule counts it, an extended ACL by protocol cuts it again; all kept with the switch.
    await ok('Add-VMNetworkAdapterAcl', '-ManagementOS', '-VMNetworkAdapterName', 'HN', '-Direction', 'Both', '-Action', 'Deny', '-RemoteIPAddress', GUEST_IP);
    assert.equal(await hostPingsGuest(), false, 'host port denies the guest address: no ping');
    await ok('Remove-VMNetworkAdapterAcl', '-ManagementOS', '-VMNetworkAdapterName', 'HN', '-Direction', 'Both', '-Action', 'Deny', '-RemoteIPAddress', GUEST_IP);
    await ok('Add-VMNetworkAdapterAcl', '-ManagementOS', '-VMNetworkAdapterName', 'HN', '-Direction', 'Both', '-Action', 'Meter', '-RemoteIPAddress', GUEST_IP);
    assert.ok(await bothWays(), 'ACL removed: ping again');
    const meter = await json<{ ParentAdapter: string; Action: string; MeteredOutboundBytes: number; MeteredInboundBytes: number }>('Get-VMNetworkAdapterAcl', '-ManagementOS', '-VMNetworkAdapterName', 'HN');
    assert.deepEqual([meter.ParentAdapter, meter.Action], ['HN', 'Meter']);
    assert.ok(meter.MeteredOutboundBytes > 0 && meter.MeteredInboundBytes > 0, `the host port's Meter rule counted the pings: ${JSON.stringify(meter)}`);
    await ok('Add-VMNetworkAdapterExtendedAcl', '-ManagementOS', '-VMNetworkAdapterName', 'HN', '-Direction', 'Outbound', '-Action', 'Deny', '-Weight', '10', '-Protocol', 'ICMP');
    assert.equal(await hostPingsGuest(), false, 'extended ACL denies ICMP from the host port');
    const ext = await json<{ Weight: number; Protocol: string }>('Get-VMNetworkAdapterExtendedAcl', '-ManagementOS', '-VMNetworkAdapterName', 'HN');
    assert.deepEqual([ext.Weight, ext.Protocol], [10, 'ICMP']);
    await ok('Remove-VMNetworkAdapterExtendedAcl', '-ManagementOS', '-VMNetworkAdapterName', 'HN', '-Direction', 'Outbound', '-Weight', '10');
    await fails(/No Outbound extended ACL with weight 10/, 'Remove-VMNetworkAdapterExtendedAcl', '-ManagementOS', '-Direction', 'Outbound', '-Weight', '10');
    await ok('Set-VMNetworkAdapter', '-ManagementOS', '-Name', 'HN', '-DhcpGuard', 'On', '-MaximumBandwidth', '100000000');
    const guarded = await json<{ DhcpGuard: string; BandwidthSetting: { MaximumBandwidth: number } }>('Get-VMNetworkAdapter', '-ManagementOS', '-Name', 'HN');
    assert.deepEqual([guarded.DhcpGuard, guarded.BandwidthSetting.MaximumBandwidth], ['On', 100000000]);

    // Daemon SIGKILL + restart: the relay is respawned and re-attaches to the persistent tap.
    await d.kill();
    assert.match((await run('ip', 'addr', 'show', 'dev', ifname)).out, new RegExp(`inet ${HOST_IP}/24`), 'the tap and its address outlive the daemon');
    const t0 = Date.now();
    await d.launch();
    assert.ok(await bothWays(), 'host ↔ guest ping after the daemon restart (both still in VLAN 10)');
    console.log(`# daemon restart: host ↔ guest ping works ${Date.now() - t0} ms after the relaunch began`);
    const again = await json<HostNic>('Get-VMNetworkAdapter', '-ManagementOS', '-Name', 'HN');
    assert.equal(again.InterfaceName, ifname, 'same interface');
    assert.equal(again.MacAddress, nic.MacAddress, 'same MAC');
    assert.ok(again.IPAddresses.includes(HOST_IP), 'the address survived the restart');
    assert.deepEqual(again.Status, ['Ok']);
    assert.equal((again as unknown as { DhcpGuard: string }).DhcpGuard, 'On', 'the host port\'s guards survived the restart');
    const meterAgain = await json<{ MeteredOutboundBytes: number }>('Get-VMNetworkAdapterAcl', '-ManagementOS', '-VMNetworkAdapterName', 'HN');
    assert.ok(meterAgain.MeteredOutboundBytes >= meter.MeteredOutboundBytes, 'the Meter rule and its count survived the restart');

    // More management-OS adapters, and the rules.
    const extra = await json<HostNic>('Add-VMNetworkAdapter', '-ManagementOS', '-Name', 'extra', '-SwitchName', 'HN', '-PassThru');
    interfaces.add(extra.InterfaceName);
    assert.notEqual(extra.InterfaceName, ifname);
    assert.equal((await run('ip', 'link', 'show', extra.InterfaceName)).code, 0, 'the added adapter has its interface');
    await ok('New-VMSwitch', '-Name', 'HP', '-SwitchType', 'Private');
    await fails(/'HP' is Private/, 'Add-VMNetworkAdapter', '-ManagementOS', '-Name', 'p', '-SwitchName', 'HP');
    await fails(/unable to find a virtual switch with name 'nope'/, 'Add-VMNetworkAdapter', '-ManagementOS', '-Name', 'n', '-SwitchName', 'nope');
    await fails(/named 'extra' already exists/, 'Add-VMNetworkAdapter', '-ManagementOS', '-Name', 'extra', '-SwitchName', 'HN');
    await fails(/Name.*not allowed/, 'Add-VMNetworkAdapter', '-ManagementOS', '-Name', 'a/b', '-SwitchName', 'HN');
    await fails(/-ManagementOS and -StaticMacAddress|cannot be used together/, 'Add-VMNetworkAdapter', '-ManagementOS', '-Name', 'm', '-SwitchName', 'HN', '-StaticMacAddress', '00155D000001');
    await ok('Remove-VMNetworkAdapter', '-ManagementOS', '-Name', 'extra');
    assert.notEqual((await run('ip', 'link', 'show', extra.InterfaceName)).code, 0, 'Remove-VMNetworkAdapter -ManagementOS deletes the interface');
    await fails(/No management-OS network adapter named 'extra'/, 'Remove-VMNetworkAdapter', '-ManagementOS', '-Name', 'extra');
    await ok('Remove-VMSwitch', 'HP');

    // Remove-VMSwitch -Force: the guest's adapter is disconnected, the host vNIC's interface deleted.
    await ok('Stop-VM', 'h1', '-TurnOff');
    await ok('Remove-VMSwitch', 'HN', '-Force');
    assert.notEqual((await run('ip', 'link', 'show', ifname)).code, 0, 'Remove-VMSwitch deletes the interface');
    assert.equal((await ok('Get-VMNetworkAdapter', '-ManagementOS', '-Json')).trim(), '', 'no host vNIC left');
  });
});
