// VM networking through the daemon and the CLI, with real guests: a Private switch, two VMs
// with an adapter each, ping between them; access VLANs; Get-VMNetworkAdapter (switch, MAC,
// the guest's IPs from KVP); Disconnect/Connect while running; a daemon SIGKILL + restart
// (the switch comes back, the running guests' NICs are re-plugged over QMP and still ping);
// Save-VM/Start-VM; one-line errors for bad input.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TestDaemon, waitFor } from './support/daemon.ts';

const IP = (n: number) => `10.0.0.${n}`;

describe('VM networking: switches and adapters', () => {
  let d: TestDaemon;
  before(async () => { d = await TestDaemon.start(); });
  after(async () => { await d?.stop(); });

  const ok = (...args: string[]) => d.ok(...args);
  const fails = async (re: RegExp, ...args: string[]) => {
    const r = await d.cli(...args);
    assert.notEqual(r.code, 0, `${args.join(' ')} should fail`);
    const msg = r.stderr.trim();
    assert.match(msg, re);
    assert.equal(msg.split('\n').length, 1, `one-line error: ${msg}`);
  };
  const json = async <T>(...args: string[]): Promise<T> => JSON.parse(await ok(...args, '-Json')) as T;
  const sh = async (vm: string, script: string): Promise<{ code: number; out: string }> => {
    const r = await d.api('POST', `/api/v1/vms/${vm}/invoke`, { ScriptBlock: script, TimeoutSeconds: 30 });
    assert.equal(r.status, 200, r.text);
    const j = r.json as { StdOut: string; StdErr: string; ExitCode: number };
    return { code: j.ExitCode, out: Buffer.from(j.StdOut, 'base64').toString() + Buffer.from(j.StdErr, 'base64').toString() };
  };
  /** Can VM a ping VM b (fresh ARP)? */
  const canPing = async (a: number, b: number): Promise<boolean> => {
    await sh(`n${a}`, 'ip neigh flush dev eth0');
    return (await sh(`n${a}`, `ping -c 1 -W 2 ${IP(b)} >/dev/null 2>&1 || ping -c 1 -W 2 ${IP(b)}`)).code === 0;
  };
  const heartbeat = (vm: string) => waitFor(`${vm} heartbeat`, 90_000, async () => ((await d.api('GET', `/api/v1/vms/${vm}`)).json as { Heartbeat: string }).Heartbeat === 'OK');

  test('bad input gets one-line errors', async () => {
    await ok('New-VM', 'g2bad', '-Generation', '2', '-MemoryStartupBytes', '128MB');
    await fails(/legacy network adapter/, 'Add-VMNetworkAdapter', '-VMName', 'g2bad', '-IsLegacy');
    await fails(/unable to find a virtual switch with name 'nope'/, 'Add-VMNetworkAdapter', '-VMName', 'g2bad', '-SwitchName', 'nope');
    await fails(/StaticMacAddress/, 'Add-VMNetworkAdapter', '-VMName', 'g2bad', '-StaticMacAddress', '01:00:5e:00:00:01');
    await ok('Add-VMNetworkAdapter', '-VMName', 'g2bad');
    await fails(/VlanId/, 'Set-VMNetworkAdapterVlan', '-VMName', 'g2bad', '-Access', '-VlanId', '5000');
    await fails(/-Access needs -VlanId/, 'Set-VMNetworkAdapterVlan', '-VMName', 'g2bad', '-Access');
    await fails(/unable to find a virtual switch/, 'Connect-VMNetworkAdapter', '-VMName', 'g2bad', '-SwitchName', 'nope');
    await ok('Remove-VM', 'g2bad', '-Force');
  });

  test('two guests on a Private switch: ping, VLANs, adapter view, live disconnect/connect, daemon restart', { timeout: 240_000 }, async () => {
    await ok('New-VMSwitch', '-Name', 'QA', '-SwitchType', 'Private');
    await fails(/already exists/, 'New-VMSwitch', '-Name', 'qa', '-SwitchType', 'Private');
    for (const n of [1, 2]) {
      await ok('New-VM', `n${n}`, '-MemoryStartupBytes', '256MB');
      await ok('Connect-VMNetworkAdapter', '-VMName', `n${n}`, '-SwitchName', 'QA');
    }
    await ok('Set-VMNetworkAdapter', '-VMName', 'n2', '-DhcpGuard', 'On');
    const t0 = Date.now();
    await Promise.all([1, 2].map((n) => ok('Start-VM', `n${n}`)));
    await Promise.all([1, 2].map((n) => heartbeat(`n${n}`)));
    console.log(`# both guests up in ${Date.now() - t0} ms`);
    for (const n of [1, 2]) assert.equal((await sh(`n${n}`, `ip addr add ${IP(n)}/24 dev eth0 && ip link set eth0 up`)).code, 0);
    assert.ok(await canPing(1, 2), 'n1 pings n2 on the untagged switch');
    assert.ok(await canPing(2, 1), 'n2 pings n1');

    // VLANs: different access VLANs cut them apart, the same one joins them again.
    await ok('Set-VMNetworkAdapterVlan', '-VMName', 'n1', '-Access', '-VlanId', '10');
    await ok('Set-VMNetworkAdapterVlan', '-VMName', 'n2', '-Access', '-VlanId', '20');
    assert.equal(await canPing(1, 2), false, 'VLAN 10 does not reach VLAN 20');
    await ok('Set-VMNetworkAdapterVlan', '-VMName', 'n2', '-Access', '-VlanId', '10');
    assert.ok(await canPing(1, 2), 'both in VLAN 10');
    const vlan = await json<{ OperationMode: string; AccessVlanId: number }>('Get-VMNetworkAdapterVlan', '-VMName', 'n2');
    assert.equal(vlan.OperationMode, 'Access');
    assert.equal(vlan.AccessVlanId, 10);

    // Get-VMNetworkAdapter: switch, MAC (from this host's 00-15-5D pool), status, guards, and the guest's IP once KVP refreshes.
    const guestMac = (await sh('n1', 'cat /sys/class/net/eth0/address')).out.trim().replace(/:/g, '').toUpperCase();
    const a1 = await waitFor('n1 IP in KVP', 30_000, async () => {
      const a = await json<{ SwitchName: string; MacAddress: string; IPAddresses: string[]; Status: string[]; DynamicMacAddressEnabled: boolean }>('Get-VMNetworkAdapter', '-VMName', 'n1');
      return a.IPAddresses.includes(IP(1)) && a;
    });
    assert.equal(a1.SwitchName, 'QA');
    assert.equal(a1.MacAddress, guestMac);
    assert.match(a1.MacAddress, /^00155D[0-9A-F]{6}$/);
    assert.equal(a1.DynamicMacAddressEnabled, true);
    assert.deepEqual(a1.Status, ['Ok']);
    assert.equal((await json<{ DhcpGuard: string }>('Get-VMNetworkAdapter', '-VMName', 'n2')).DhcpGuard, 'On');
    const table = await ok('Get-VMNetworkAdapter', '-VMName', 'n1');
    assert.match(table, /Network Adapter\s+n1\s+QA\s+00155D/);

    // Live Disconnect / Connect.
    await ok('Disconnect-VMNetworkAdapter', '-VMName', 'n2');
    assert.equal(await canPing(1, 2), false, 'no ping while n2 is disconnected');
    assert.equal((await json<{ SwitchName: string | null }>('Get-VMNetworkAdapter', '-VMName', 'n2')).SwitchName, null);
    await fails(/connected network adapter|disconnect them or use -Force/, 'Remove-VMSwitch', 'QA');
    await ok('Connect-VMNetworkAdapter', '-VMName', 'n2', '-SwitchName', 'QA');
    if (!(await waitFor('ping after Connect', 15_000, () => canPing(1, 2)).catch(() => false))) {
      const sw = await json<{ Statistics: unknown }>('Get-VMSwitch', 'QA');
      for (const n of [1, 2]) console.log(`# DIAG n${n}:`, (await sh(`n${n}`, 'ip -s link show eth0; ip neigh; cat /proc/net/dev')).out.replace(/\n/g, '\n# '));
      console.log('# DIAG switch', JSON.stringify(sw.Statistics));
      assert.fail('ping works again after Connect while running');
    }
    assert.equal((await json<{ AccessVlanId: number }>('Get-VMNetworkAdapterVlan', '-VMName', 'n2')).AccessVlanId, 10, 'the port policy survives a reconnect');

    // ACLs, live: an inbound ICMP deny on n2 stops the ping; a Meter ACL on n1 counts it.
    await ok('Add-VMNetworkAdapterExtendedAcl', '-VMName', 'n2', '-Direction', 'Inbound', '-Action', 'Deny', '-Protocol', 'ICMP', '-Weight', '10');
    assert.equal(await canPing(1, 2), false, 'ICMP denied toward n2');
    assert.equal((await json<{ Weight: number; Protocol: string }>('Get-VMNetworkAdapterExtendedAcl', '-VMName', 'n2')).Protocol, 'ICMP');
    await ok('Remove-VMNetworkAdapterExtendedAcl', '-VMName', 'n2', '-Direction', 'Inbound', '-Weight', '10');
    await ok('Add-VMNetworkAdapterAcl', '-VMName', 'n1', '-Direction', 'Both', '-Action', 'Meter', '-RemoteIPAddress', IP(2));
    assert.ok(await canPing(1, 2), 'ping again once the deny is removed');
    const meter = await json<{ MeteredOutboundBytes: number; MeteredInboundBytes: number }>('Get-VMNetworkAdapterAcl', '-VMName', 'n1');
    assert.ok(meter.MeteredOutboundBytes >= 98 && meter.MeteredInboundBytes >= 98, JSON.stringify(meter));
    // An extension enabled on the switch sees the traffic and leaves it alone.
    await ok('Enable-VMSwitchExtension', '-VMSwitchName', 'QA', '-Name', 'vmhost.flow-sampler');
    assert.ok(await canPing(1, 2), 'ping with the flow sampler enabled');
    const ext = (await json<{ Name: string; Enabled: boolean }[]>('Get-VMSwitchExtension', '-VMSwitchName', 'QA')).find((x) => x.Name === 'vmhost.flow-sampler');
    assert.equal(ext?.Enabled, true);

    // Daemon SIGKILL + restart: the switch is recreated, the NICs re-plugged, the guests ping.
    await d.kill();
    const t1 = Date.now();
    await d.launch();
    const launched = Date.now() - t1;
    assert.ok(await waitFor('ping after daemon restart', 30_000, () => canPing(1, 2)), 'ping after the daemon restart');
    console.log(`# daemon restart: up in ${launched} ms, ping works ${Date.now() - t1} ms after the restart began`);
    const events = await readFile(join(d.dataDir, 'events.jsonl'), 'utf8');
    const replugged = events.split('\n').filter((l) => l.includes('VM_NIC_REPLUGGED'));
    assert.equal(replugged.length, 2, events);
    assert.equal(events.split('\n').filter((l) => l.includes('SWITCH_ACL_DENY')).length, 1, 'the ICMP deny was logged once (rate-limited), not per frame');
    console.log(`# ${replugged.map((l) => (JSON.parse(l) as { Message: string }).Message).join('; ')}`);
    const sw = await json<{ Name: string; Ports: number; ConnectedPorts: number }>('Get-VMSwitch', 'QA');
    assert.equal(sw.Ports, 2);
    assert.equal(sw.ConnectedPorts, 2);
    assert.equal((await json<{ AccessVlanId: number }>('Get-VMNetworkAdapterVlan', '-VMName', 'n1')).AccessVlanId, 10);
    assert.equal((await json<{ Action: string }>('Get-VMNetworkAdapterAcl', '-VMName', 'n1')).Action, 'Meter', 'ACLs survive the restart');
    assert.equal((await json<{ Name: string; Enabled: boolean }[]>('Get-VMSwitchExtension', '-VMSwitchName', 'QA')).find((x) => x.Name === 'vmhost.flow-sampler')?.Enabled, true, 'so does the extension');

    // Save-VM + Start-VM: the restored QEMU connects to the same port again.
    await ok('Save-VM', 'n2');
    assert.equal(await canPing(1, 2), false, 'n2 saved');
    await ok('Start-VM', 'n2');
    assert.ok(await waitFor('ping after restore', 30_000, () => canPing(1, 2)), 'ping after Save-VM/Start-VM');

    // Clean up: VMs off, -Force removes a switch with adapters on it.
    await Promise.all([1, 2].map((n) => ok('Stop-VM', `n${n}`, '-TurnOff')));
    await ok('Remove-VMSwitch', 'QA', '-Force');
    assert.equal((await json<{ SwitchName: string | null }>('Get-VMNetworkAdapter', '-VMName', 'n1')).SwitchName, null);
  });
});
