// The switch's port policies end to end: set through `bin/vmhost` cmdlets on a real daemon,
// checked with three real guests (busybox tools run through the invoke API) and the switch's
// own counters as `Get-VMSwitch -Json` reports them. Trunk (the guest's own 802.1Q
// sub-interfaces), private VLANs, MAC spoofing / DHCP / ARP guards, MaximumBandwidth on a real
// download, port mirroring, Start-/Stop-VMSwitchCapture read back with tshark, counters that
// survive a graceful daemon restart, and per-adapter IP addresses of a VM on two switches.
// The guests boot once; every test puts the policies it changed back to the defaults.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureGuestImage } from '../src/guest/index.ts';
import { TestDaemon, waitFor } from './support/daemon.ts';
import { insmodScripts, vlanModules } from './support/guest-vlan.ts';

const haveQemu = spawnSync('qemu-system-x86_64', ['--version']).status === 0;
const haveTshark = spawnSync('tshark', ['--version']).status === 0;
const IP = (n: number): string => `10.0.0.${n}`;
const VMS = [1, 2, 3] as const;

/** Port counters as the REST API and the switch file hold them. */
interface Counters { rxFrames: number; rxBytes: number; txFrames: number; txBytes: number; drops: Record<string, number> }
/** The same through `-Json`: record keys PascalCased, dictionary keys (drop reasons, port ids) as they are. */
interface CliCounters { RxFrames: number; RxBytes: number; TxFrames: number; TxBytes: number; Drops: Record<string, number> }
interface Adapter { Name: string; Id: string; MacAddress: string; IPAddresses: string[]; Statistics: CliCounters | null }

describe('switch policies through the daemon and CLI, with real guests', { skip: !haveQemu && 'qemu-system-x86_64 not installed' }, () => {
  let d: TestDaemon;
  /** Port id (= adapter id) and guest-side MAC (lower-case, colons) of each VM's "Network Adapter" on QA. */
  const port: Record<number, { id: string; mac: string }> = {};

  const ok = (...args: string[]) => d.ok(...args);
  const fails = async (re: RegExp, ...args: string[]): Promise<void> => {
    const r = await d.cli(...args);
    assert.notEqual(r.code, 0, `${args.join(' ')} should fail`);
    assert.match(r.stderr.trim(), re);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one-line error: ${r.stderr}`);
  };
  const json = async <T>(...args: string[]): Promise<T> => JSON.parse(await ok(...args, '-Json')) as T;
  const sh = async (n: number, script: string, expectCode?: number): Promise<{ code: number; out: string }> => {
    const r = await d.api('POST', `/api/v1/vms/n${n}/invoke`, { ScriptBlock: script, TimeoutSeconds: 40 });
    assert.equal(r.status, 200, r.text);
    const j = r.json as { StdOut: string; StdErr: string; ExitCode: number };
    const out = Buffer.from(j.StdOut, 'base64').toString() + Buffer.from(j.StdErr, 'base64').toString();
    if (expectCode !== undefined) assert.equal(j.ExitCode, expectCode, `n${n}: ${script.slice(0, 200)}\n${out}`);
    return { code: j.ExitCode, out };
  };
  const canPing = async (a: number, b: number): Promise<boolean> => {
    await sh(a, 'ip neigh flush dev eth0');
    return (await sh(a, `ping -c 1 -W 2 ${IP(b)} >/dev/null 2>&1 || ping -c 1 -W 2 ${IP(b)}`)).code === 0;
  };
  /** Drops of a reason on VM n's port, and on the whole switch, from `Get-VMSwitch -Json`. */
  const drops = async (n: number, reason: string): Promise<{ port: number; total: number }> => {
    const s = (await json<{ Statistics: CliCounters & { Ports: Record<string, CliCounters> } }>('Get-VMSwitch', 'QA')).Statistics;
    const p = s.Ports[port[n]!.id];
    assert.ok(p, `port of n${n} in ${Object.keys(s.Ports).join(', ')}`);
    return { port: p.Drops[reason] ?? 0, total: s.Drops[reason] ?? 0 };
  };
  const untagAll = () => Promise.all(VMS.map((n) => ok('Set-VMNetworkAdapterVlan', '-VMName', `n${n}`, '-VMNetworkAdapterName', 'Network Adapter', '-Untagged')));
  /** tshark takes a second or two to start: the readings of both files run side by side. */
  const tshark = (file: string, ...args: string[]): Promise<string> => new Promise((resolve, reject) => {
    execFile('tshark', ['-r', file, ...args], (err, stdout, stderr) => (err ? reject(new Error(`tshark ${args.join(' ')}: ${stderr}`)) : resolve(stdout)));
  });

  before(async () => {
    d = await TestDaemon.start();
    await Promise.all(['QA', 'QB'].map((sw) => ok('New-VMSwitch', '-Name', sw, '-SwitchType', 'Private')));
    await Promise.all(VMS.map(async (n) => {
      await ok('New-VM', `n${n}`, '-MemoryStartupBytes', '256MB');
      await ok('Connect-VMNetworkAdapter', '-VMName', `n${n}`, '-SwitchName', 'QA');
    }));
    await ok('Add-VMNetworkAdapter', '-VMName', 'n1', '-Name', 'Second', '-SwitchName', 'QB');
    const t0 = Date.now();
    await Promise.all(VMS.map((n) => ok('Start-VM', `n${n}`)));
    await Promise.all(VMS.map((n) => waitFor(`n${n} heartbeat`, 120_000, async () => ((await d.api('GET', `/api/v1/vms/n${n}`)).json as { Heartbeat: string }).Heartbeat === 'OK')));
    console.log(`# three guests up in ${Date.now() - t0} ms`);
    await Promise.all(VMS.map(async (n) => {
      const a = await json<Adapter>('Get-VMNetworkAdapter', '-VMName', `n${n}`, '-Name', 'Network Adapter');
      port[n] = { id: a.Id, mac: a.MacAddress.toLowerCase().match(/../g)!.join(':') };
      // eth0 must be the QA adapter: checked, not assumed (n1 has two NICs).
      assert.equal((await sh(n, 'cat /sys/class/net/eth0/address', 0)).out.trim(), port[n]!.mac, `n${n} eth0 is its QA adapter`);
      await sh(n, `ip addr add ${IP(n)}/24 dev eth0 && ip link set eth0 up`, 0);
    }));
    const second = await json<Adapter>('Get-VMNetworkAdapter', '-VMName', 'n1', '-Name', 'Second');
    const mac2 = second.MacAddress.toLowerCase().match(/../g)!.join(':');
    assert.equal((await sh(1, 'cat /sys/class/net/eth1/address', 0)).out.trim(), mac2, 'n1 eth1 is its QB adapter');
    await sh(1, 'ip addr add 10.9.0.1/24 dev eth1 && ip link set eth1 up', 0);
  });
  after(async () => { await d?.stop(); });

  test('trunk: the guest\'s VLAN 10 sub-interface reaches an access-VLAN-10 guest, VLAN 30 is not allowed', { timeout: 90_000 }, async (t) => {
    const image = await ensureGuestImage();
    const { kernelVersion } = JSON.parse(readFileSync(image.manifest, 'utf8')) as { kernelVersion: string };
    const mods = vlanModules(image.kernel, kernelVersion, join(d.dataDir, 'mods'));
    if (!mods) { t.skip('no cached kernel package to take 8021q.ko from'); return; }
    await sh(1, insmodScripts(mods).join('\n'), 0);
    await Promise.all([
      ok('Set-VMNetworkAdapterVlan', '-VMName', 'n1', '-VMNetworkAdapterName', 'Network Adapter', '-Trunk', '-AllowedVlanIdList', '10,20', '-NativeVlanId', '1'),
      ok('Set-VMNetworkAdapterVlan', '-VMName', 'n2', '-Access', '-VlanId', '10'),
      ok('Set-VMNetworkAdapterVlan', '-VMName', 'n3', '-Access', '-VlanId', '30'),
    ]);
    try {
      const v = await json<{ OperationMode: string; AllowedVlanIdList: string; NativeVlanId: number }>('Get-VMNetworkAdapterVlan', '-VMName', 'n1', '-VMNetworkAdapterName', 'Network Adapter');
      assert.deepEqual([v.OperationMode, v.AllowedVlanIdList, v.NativeVlanId], ['Trunk', '10,20', 1]);
      await sh(1, [
        'ip link add link eth0 name eth0.10 type vlan id 10', 'ip addr add 10.10.0.1/24 dev eth0.10', 'ip link set eth0.10 up',
        'ip link add link eth0 name eth0.30 type vlan id 30', 'ip addr add 10.30.0.1/24 dev eth0.30', 'ip link set eth0.30 up',
      ].join(' && '), 0);
      await sh(2, 'ip addr add 10.10.0.2/24 dev eth0', 0);
      await sh(3, 'ip addr add 10.30.0.3/24 dev eth0', 0);
      assert.equal((await sh(1, 'ping -c 1 -W 3 10.10.0.2')).code, 0, 'tagged VLAN 10 reaches the access port');
      const d0 = await drops(1, 'vlan-not-allowed');
      assert.notEqual((await sh(1, 'ping -c 1 -W 1 10.30.0.3')).code, 0, 'VLAN 30 is not on the trunk');
      const d1 = await drops(1, 'vlan-not-allowed');
      assert.ok(d1.port > d0.port && d1.total > d0.total, `vlan-not-allowed ${JSON.stringify(d0)} → ${JSON.stringify(d1)}`);
      assert.equal(await canPing(1, 2), false, 'untagged = native VLAN 1, not VLAN 10');
    } finally {
      await sh(1, 'ip link del eth0.10; ip link del eth0.30; true');
      await sh(2, 'ip addr del 10.10.0.2/24 dev eth0; true');
      await sh(3, 'ip addr del 10.30.0.3/24 dev eth0; true');
      await untagAll();
    }
  });

  test('private VLANs: isolated↔isolated blocked, community↔community allowed, promiscuous reaches all', { timeout: 90_000 }, async () => {
    const pv = (n: number, mode: string, ...rest: string[]) => ok('Set-VMNetworkAdapterVlan', '-VMName', `n${n}`, '-VMNetworkAdapterName', 'Network Adapter', `-${mode}`, '-PrimaryVlanId', '100', ...rest);
    try {
      await Promise.all([pv(1, 'Isolated', '-SecondaryVlanId', '101'), pv(2, 'Isolated', '-SecondaryVlanId', '101'), pv(3, 'Promiscuous', '-SecondaryVlanIdList', '101,102')]);
      const d0 = await drops(2, 'pvlan-isolation');
      assert.equal(await canPing(1, 2), false, 'isolated → isolated');
      assert.ok((await drops(2, 'pvlan-isolation')).port > d0.port, 'withheld frames counted on the port they were going to');
      assert.ok(await canPing(1, 3), 'isolated → promiscuous');
      assert.ok(await canPing(3, 2), 'promiscuous → isolated');
      await Promise.all([pv(1, 'Community', '-SecondaryVlanId', '102'), pv(2, 'Community', '-SecondaryVlanId', '102')]);
      assert.ok(await canPing(1, 2), 'community ↔ same community');
      assert.ok(await canPing(3, 2), 'promiscuous → community');
      const v = await json<{ OperationMode: string; PrivateVlanMode: string; SecondaryVlanIdList: string }>('Get-VMNetworkAdapterVlan', '-VMName', 'n3');
      assert.deepEqual([v.OperationMode, v.PrivateVlanMode, v.SecondaryVlanIdList], ['Private', 'Promiscuous', '101,102']);
    } finally {
      await untagAll();
    }
  });

  test('MAC spoofing guard: a changed source MAC is dropped and counted while Off (the default), passes when On', { timeout: 60_000 }, async () => {
    assert.equal((await json<Adapter & { MacAddressSpoofing: string }>('Get-VMNetworkAdapter', '-VMName', 'n3')).MacAddressSpoofing, 'Off');
    await sh(3, 'ip link set eth0 address 00:15:5d:99:99:99', 0);
    try {
      const d0 = await drops(3, 'mac-spoofing');
      assert.equal(await canPing(3, 1), false, 'spoofed source MAC dropped');
      const d1 = await drops(3, 'mac-spoofing');
      assert.ok(d1.port > d0.port && d1.total > d0.total, `mac-spoofing ${JSON.stringify(d0)} → ${JSON.stringify(d1)}`);
      await ok('Set-VMNetworkAdapter', '-VMName', 'n3', '-MacAddressSpoofing', 'On');
      assert.ok(await canPing(3, 1), 'passes with -MacAddressSpoofing On');
    } finally {
      await sh(3, `ip link set eth0 address ${port[3]!.mac}`, 0);
      await ok('Set-VMNetworkAdapter', '-VMName', 'n3', '-MacAddressSpoofing', 'Off');
    }
    assert.ok(await canPing(3, 1), 'own MAC passes again');
  });

  test('DHCP guard: a guest\'s udhcpd offers are dropped with -DhcpGuard On, answered with Off', { timeout: 60_000 }, async () => {
    await sh(3, [
      'printf "interface eth0\\nstart 10.0.0.100\\nend 10.0.0.110\\nlease_file /tmp/udhcpd.leases\\noption subnet 255.255.255.0\\n" > /tmp/udhcpd.conf',
      'touch /tmp/udhcpd.leases', '(udhcpd -a 100 /tmp/udhcpd.conf || udhcpd /tmp/udhcpd.conf) >/dev/null 2>&1 </dev/null', 'sleep 0.5',
    ].join('; '), 0);
    // The client's script does nothing: n1 keeps its static address.
    await sh(1, 'printf "#!/bin/sh\\nexit 0\\n" > /tmp/dhcp.sh; chmod +x /tmp/dhcp.sh', 0);
    const client = 'udhcpc -n -q -t 3 -T 1 -A 1 -i eth0 -s /tmp/dhcp.sh 2>&1';
    try {
      await ok('Set-VMNetworkAdapter', '-VMName', 'n3', '-DhcpGuard', 'On');
      const d0 = await drops(3, 'dhcp-guard');
      const guarded = await sh(1, client);
      assert.notEqual(guarded.code, 0, guarded.out);
      assert.ok((await drops(3, 'dhcp-guard')).port > d0.port, 'offers dropped as dhcp-guard');
      await ok('Set-VMNetworkAdapter', '-VMName', 'n3', '-DhcpGuard', 'Off');
      const open = await sh(1, client);
      assert.match(open.out, /lease of 10\.0\.0\.1(0\d|10) obtained/, 'the same server answers once the guard is off');
    } finally {
      await sh(3, 'killall udhcpd; true');
      await ok('Set-VMNetworkAdapter', '-VMName', 'n3', '-DhcpGuard', 'Off');
    }
  });

  test('ARP guard: a forged arping claiming n2\'s address is dropped; n1 still reaches n2 at its own MAC', { timeout: 60_000 }, async () => {
    assert.ok(await canPing(1, 2)); // the switch has seen n1 and n2 use their addresses
    await ok('Set-VMNetworkAdapter', '-VMName', 'n3', '-ArpGuard', 'On');
    try {
      await sh(1, 'sleep 1.2'); // past the neighbour entry's locktime, so a forgery would be taken
      const d0 = await drops(3, 'arp-spoofing');
      await sh(3, `echo 1 > /proc/sys/net/ipv4/ip_nonlocal_bind; arping -U -c 2 -w 3 -s ${IP(2)} -I eth0 ${IP(2)}; arping -A -c 2 -w 3 -s ${IP(2)} -I eth0 ${IP(2)}; true`);
      const d1 = await drops(3, 'arp-spoofing');
      assert.ok(d1.port - d0.port >= 2, `arp-spoofing ${JSON.stringify(d0)} → ${JSON.stringify(d1)}`);
      assert.match((await sh(1, `ip neigh show ${IP(2)}`)).out, new RegExp(port[2]!.mac), 'n1 still has n2 at n2\'s MAC');
      await sh(1, `ping -c 1 -W 2 ${IP(2)}`, 0);
    } finally {
      await ok('Set-VMNetworkAdapter', '-VMName', 'n3', '-ArpGuard', 'Off');
    }
  });

  test('MaximumBandwidth 10000000 (bits/s) caps what the VM sends to within ±10 %', { timeout: 90_000 }, async () => {
    await sh(2, 'mkdir -p /tmp/www && head -c 6000000 /dev/zero > /tmp/www/f', 0);
    const httpd = sh(2, 'timeout 30 httpd -f -p 8080 -h /tmp/www; true');
    await ok('Set-VMNetworkAdapter', '-VMName', 'n2', '-MaximumBandwidth', '10000000');
    try {
      assert.equal((await json<{ BandwidthSetting: { MaximumBandwidth: number } }>('Get-VMNetworkAdapter', '-VMName', 'n2')).BandwidthSetting.MaximumBandwidth, 10_000_000);
      await sh(1, 'sleep 0.5');
      const dl = sh(1, `wget -q -O /dev/null http://${IP(2)}:8080/f`);
      // n2's port counters through the REST API (what Get-VMNetworkAdapter -Json shows), read
      // directly for exact timestamps: what the switch took from n2 over 3 s of the download.
      const rx = async (): Promise<number> => ((await d.api('GET', `/api/v1/vms/n2/network-adapters`)).json as { Statistics: Counters }[])[0]!.Statistics.rxBytes;
      await new Promise((r) => setTimeout(r, 1000));
      const b0 = await rx(), t0 = performance.now();
      await new Promise((r) => setTimeout(r, 3000));
      const rate = ((await rx()) - b0) * 8 / ((performance.now() - t0) / 1000);
      console.log(`# MaximumBandwidth 10000000: measured ${(rate / 1e6).toFixed(2)} Mbit/s`);
      assert.ok(Math.abs(rate - 10e6) <= 1e6, `rate ${rate}`);
      assert.equal((await dl).code, 0);
    } finally {
      await ok('Set-VMNetworkAdapter', '-VMName', 'n2', '-MaximumBandwidth', '0');
      await sh(2, 'killall httpd; true');
      await httpd;
    }
  });

  test('port mirroring and Start-/Stop-VMSwitchCapture: the destination sees the source\'s traffic; tshark reads both captures clean', { timeout: 90_000 }, async () => {
    const dir = d.dataDir;
    const swPcap = join(dir, 'qa.pcap'), n3Pcap = join(dir, 'n3.pcap');
    // Path checks (one-line errors); -Force overwrites.
    writeFileSync(n3Pcap, 'old');
    const rel = await d.api('POST', '/api/v1/switches/QA/capture', { Path: 'x.pcap' }); // the CLI would make it absolute
    assert.equal(rel.status, 400, rel.text);
    assert.match(rel.text, /not an absolute path/);
    await Promise.all([
      fails(/directory '\/nonexistent' does not exist/, 'Start-VMSwitchCapture', '-SwitchName', 'QA', '-Path', '/nonexistent/x.pcap'),
      fails(/already exists; use -Force/, 'Start-VMSwitchCapture', '-SwitchName', 'QA', '-VMName', 'n3', '-Path', n3Pcap),
      fails(/no network adapter connected to switch 'QB'/, 'Start-VMSwitchCapture', '-SwitchName', 'QB', '-VMName', 'n3', '-Path', swPcap),
      fails(/No packet capture is running/, 'Stop-VMSwitchCapture', '-SwitchName', 'QA'),
    ]);
    await Promise.all([
      ok('Start-VMSwitchCapture', '-SwitchName', 'QA', '-Path', swPcap),
      ok('Start-VMSwitchCapture', '-SwitchName', 'QA', '-VMName', 'n3', '-Path', n3Pcap, '-Force'),
    ]);
    await fails(/already running/, 'Start-VMSwitchCapture', '-SwitchName', 'QA', '-Path', join(dir, 'other.pcap'));

    // n3 in promiscuous mode, or QEMU's virtio-net filter drops frames for other MACs before the guest counts them.
    await sh(3, 'ip link set eth0 promisc on', 0);
    const rxPackets = async (): Promise<number> => Number((await sh(3, 'cat /sys/class/net/eth0/statistics/rx_packets', 0)).out);
    // n3 also gets the segment's own chatter (a broadcast or an IPv6 multicast now and then), in
    // either window: so "none of the pings" is at most NOISE frames, and "all of them" at least
    // the 2 × PINGS echo frames (chatter only adds to that).
    const PINGS = 10, NOISE = 3;
    const pings = async (): Promise<number> => {
      await sh(1, `ping -c 1 -W 2 ${IP(2)}`, 0); // neighbours resolved before counting
      const before = await rxPackets();
      await sh(1, `ping -c ${PINGS} -i 0.2 -W 2 ${IP(2)}`, 0);
      return (await rxPackets()) - before;
    };
    try {
      const unmirrored = await pings();
      await Promise.all([
        ok('Set-VMNetworkAdapter', '-VMName', 'n1', '-Name', 'Network Adapter', '-PortMirroring', 'Source'),
        ok('Set-VMNetworkAdapter', '-VMName', 'n3', '-PortMirroring', 'Destination'),
      ]);
      const mirrored = await pings();
      console.log(`# n3 received ${unmirrored} frames during n1↔n2's ${PINGS} pings unmirrored, ${mirrored} mirrored`);
      assert.ok(unmirrored <= NOISE, `unmirrored: n3 got ${unmirrored} frames (chatter allows ${NOISE}, the pings are ${2 * PINGS})`);
      assert.ok(mirrored >= 2 * PINGS, `mirrored: n3 got ${mirrored} frames, fewer than the ${2 * PINGS} echo frames`);
    } finally {
      await Promise.all([
        ok('Set-VMNetworkAdapter', '-VMName', 'n1', '-Name', 'Network Adapter', '-PortMirroring', 'None'),
        ok('Set-VMNetworkAdapter', '-VMName', 'n3', '-PortMirroring', 'None'),
        sh(3, 'ip link set eth0 promisc off', 0),
      ]);
    }
    const [n3Done, swDone] = await Promise.all([
      json<{ Frames: number; Path: string }>('Stop-VMSwitchCapture', '-SwitchName', 'QA', '-VMName', 'n3'),
      json<{ Frames: number; Path: string }>('Stop-VMSwitchCapture', '-SwitchName', 'QA'),
    ]);
    assert.equal(n3Done.Path, n3Pcap);
    assert.ok(n3Done.Frames >= 10 && swDone.Frames >= 24, `frames: n3 ${n3Done.Frames}, switch ${swDone.Frames}`);
    console.log(`# captures: switch ${swDone.Frames} frames, n3's port ${n3Done.Frames} frames`);
    if (!haveTshark) return;
    const [swMalformed, n3Malformed, swIcmp, n3Icmp] = await Promise.all([
      tshark(swPcap, '-Y', '_ws.malformed'), tshark(n3Pcap, '-Y', '_ws.malformed'),
      ...[swPcap, n3Pcap].map((f) => tshark(f, '-Y', 'icmp', '-T', 'fields', '-e', 'ip.src', '-e', 'ip.dst', '-e', 'icmp.type')),
    ]);
    assert.equal(swMalformed!.trim(), '', 'no malformed packets in the switch capture');
    assert.equal(n3Malformed!.trim(), '', 'no malformed packets in n3\'s capture');
    const count = (fields: string, src: number, dst: number, type: number): number => fields.split('\n').filter((l) => l === `${IP(src)}\t${IP(dst)}\t${type}`).length;
    assert.ok(count(swIcmp!, 1, 2, 8) >= 6 && count(swIcmp!, 2, 1, 0) >= 6, `the switch capture has n1↔n2 echo requests and replies:\n${swIcmp}`);
    assert.ok(count(n3Icmp!, 1, 2, 8) >= 5 && count(n3Icmp!, 2, 1, 0) >= 5, `n3's port got n1↔n2's ICMP by mirroring:\n${n3Icmp}`);
  });

  test('Meter ACL and port counters survive a graceful daemon restart', { timeout: 90_000 }, async () => {
    await ok('Add-VMNetworkAdapterAcl', '-VMName', 'n1', '-VMNetworkAdapterName', 'Network Adapter', '-Direction', 'Both', '-Action', 'Meter', '-RemoteIPAddress', IP(2));
    await sh(1, `ping -c 3 -i 0.2 -W 2 ${IP(2)}`, 0);
    type Meter = { MeteredInboundBytes: number; MeteredOutboundBytes: number };
    const meter = () => json<Meter>('Get-VMNetworkAdapterAcl', '-VMName', 'n1', '-VMNetworkAdapterName', 'Network Adapter');
    const portStats = async (): Promise<CliCounters> => (await json<Adapter>('Get-VMNetworkAdapter', '-VMName', 'n1', '-Name', 'Network Adapter')).Statistics!;
    const m0 = await meter(), p0 = await portStats();
    assert.ok(m0.MeteredOutboundBytes >= 3 * 98 && m0.MeteredInboundBytes >= 3 * 98, JSON.stringify(m0));
    const saved = () => (JSON.parse(readFileSync(join(d.dataDir, 'switches', 'QA.json'), 'utf8')) as { counters: Record<string, { counters: Counters; meters: { outboundBytes: number }[] }> }).counters[port[1]!.id]!;
    await d.terminate();
    assert.ok(saved().counters.rxBytes >= p0.RxBytes, 'the switch file holds the counters');
    await d.launch();
    const m1 = await meter(), p1 = await portStats();
    console.log(`# Meter in/out before the restart ${m0.MeteredInboundBytes}/${m0.MeteredOutboundBytes} B, after ${m1.MeteredInboundBytes}/${m1.MeteredOutboundBytes} B; port rx ${p0.RxBytes} → ${p1.RxBytes} B`);
    assert.ok(m1.MeteredOutboundBytes >= m0.MeteredOutboundBytes && m1.MeteredInboundBytes >= m0.MeteredInboundBytes, 'Meter counters kept');
    assert.ok(p1.RxBytes >= p0.RxBytes && p1.TxBytes >= p0.TxBytes && p1.RxFrames >= p0.RxFrames, 'port counters kept');
    assert.ok(await waitFor('ping after the restart', 30_000, () => canPing(1, 2)));
    const m2 = await meter();
    assert.ok(m2.MeteredOutboundBytes > m1.MeteredOutboundBytes, 'and they keep counting');
    // While the daemon runs the file follows within the save interval (what a SIGKILL would keep).
    const t0 = Date.now();
    await waitFor('the periodic save', 15_000, async () => saved().meters[0]!.outboundBytes >= m2.MeteredOutboundBytes);
    console.log(`# the switch file had the new Meter count ${Date.now() - t0} ms later`);
  });

  test('IP addresses per adapter: a VM on two switches shows each address on its own adapter', { timeout: 60_000 }, async () => {
    // 10.9.0.1 was put on n1's second NIC (on QB) at the start; the agent's KVP report is refreshed every 10 s.
    const both = await waitFor('both addresses in KVP', 40_000, async () => {
      const list = await json<Adapter[]>('Get-VMNetworkAdapter', '-VMName', 'n1');
      return list.every((a) => a.IPAddresses.length > 0) && list.some((a) => a.IPAddresses.includes('10.9.0.1')) && list;
    });
    const byName = Object.fromEntries(both.map((a) => [a.Name, a.IPAddresses.filter((x) => !x.includes(':'))]));
    assert.deepEqual(byName, { 'Network Adapter': [IP(1)], Second: ['10.9.0.1'] });
    console.log(`# n1 adapters: ${JSON.stringify(Object.fromEntries(both.map((a) => [a.Name, a.IPAddresses])))}`);
  });
});
