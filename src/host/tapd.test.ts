// The host vNIC helper alone (native/vmhost-tapd.c through tapd.ts), no daemon, no guest: a
// switch with the tap's socket port and an in-process responder port that answers ARP and
// ICMP echo for PEER. The host pings PEER through the tap (busybox ping: the host needs no
// ping package); stopping the relay leaves the persistent tap with its address, a new relay
// re-attaches; a port nobody listens on is a typed error; deleteTap removes the interface.
// Needs root and /dev/net/tun (skipped otherwise).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  ARP_REPLY, ARP_REQUEST, ETHERTYPE_ARP, ETHERTYPE_IPV4, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, IPPROTO_ICMP,
  buildArp, buildEthernet, buildIcmpv4Echo, buildIpv4, macFromNumber, parseArp, parseEthernet, parseIcmpv4, parseIpv4, parseIpv4Address, parseMac,
} from '../packet/index.ts';
import { VirtualSwitch } from '../switch/index.ts';
import { isVmhostError } from '../common/index.ts';
import { deleteTap, TapRelay } from './tapd.ts';
import { freeTestNet, tapSkip as skip } from './tap-test-support.ts';

const NET = freeTestNet(100, 75); // test/host-nic.test.ts takes 175–249
const HOST_IP = `${NET}.1`;
const PEER_IP = `${NET}.2`;
const PEER_MAC = parseMac('02:00:00:77:00:02');
const TAP_MAC = '00:15:5d:77:00:01';
const IFNAME = `vmht${randomBytes(4).toString('hex')}`;

function run(cmd: string, ...args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((ok) => execFile(cmd, args, { timeout: 10_000 }, (err, stdout, stderr) => ok({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr })));
}

/** Answers ARP requests and ICMP echo requests for PEER_IP, as a guest would. */
function responder(sw: VirtualSwitch, port: string): (frame: Uint8Array) => void {
  const peer = parseIpv4Address(PEER_IP);
  return (frame) => {
    const eth = parseEthernet(frame);
    if (!eth.ok) return;
    const from = macFromNumber(eth.src);
    if (eth.ethertype === ETHERTYPE_ARP) {
      const arp = parseArp(frame, eth.payloadOffset);
      if (!arp.ok || arp.op !== ARP_REQUEST || arp.tpa !== peer) return;
      const reply = buildArp({ op: ARP_REPLY, sha: PEER_MAC, spa: peer, tha: from, tpa: arp.spa });
      sw.inject(port, buildEthernet({ dst: from, src: PEER_MAC, ethertype: ETHERTYPE_ARP, payload: reply }));
    } else if (eth.ethertype === ETHERTYPE_IPV4) {
      const ip = parseIpv4(frame, eth.payloadOffset);
      if (!ip.ok || ip.protocol !== IPPROTO_ICMP || ip.dst !== peer) return;
      const icmpAt = eth.payloadOffset + ip.headerLength;
      const icmp = parseIcmpv4(frame, icmpAt);
      if (!icmp.ok || icmp.type !== ICMP_ECHO_REQUEST) return;
      const data = frame.slice(icmp.dataOffset, eth.payloadOffset + ip.totalLength);
      const echo = buildIcmpv4Echo({ type: ICMP_ECHO_REPLY, id: icmp.id, seq: icmp.seq, data });
      const packet = buildIpv4({ src: peer, dst: ip.src, protocol: IPPROTO_ICMP, payload: echo });
      sw.inject(port, buildEthernet({ dst: from, src: PEER_MAC, ethertype: ETHERTYPE_IPV4, payload: packet }));
    }
  };
}

describe('vmhost-tapd: a tap relayed to a switch port', { skip }, () => {
  let dir: string;
  let sw: VirtualSwitch;
  let socketPath: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmhost-tapd-'));
    sw = await VirtualSwitch.create({ name: 'T', type: 'Internal', socketDir: dir });
    socketPath = (await sw.addPort({ id: 'host', policy: { mac: TAP_MAC } })).socketPath;
    await sw.addPort({ id: 'peer', sink: responder(sw, 'peer') });
  });
  after(async () => {
    await deleteTap(IFNAME).catch(() => undefined);
    await sw?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const ping = () => run('busybox', 'ping', '-c', '1', '-W', '2', PEER_IP);

  test('host ↔ port through the tap; the tap and its address outlive the relay; delete removes it', async () => {
    const relay = await TapRelay.start({ ifname: IFNAME, mac: TAP_MAC, socketPath });
    const link = await run('ip', 'link', 'show', IFNAME);
    assert.match(link.out, new RegExp(`link/ether ${TAP_MAC}`), 'the MAC is set');
    assert.match(link.out, /UP/, 'the link is up');
    assert.equal((await run('ip', 'addr', 'add', `${HOST_IP}/24`, 'dev', IFNAME)).code, 0);
    const p1 = await ping();
    assert.equal(p1.code, 0, `host pings the peer through the tap: ${p1.out}`);
    const counters = sw.portStats('host');
    assert.ok(counters.rxFrames >= 2 && counters.txFrames >= 2, `frames both ways on the tap's port: ${JSON.stringify(counters)}`);

    await relay.stop();
    assert.match((await run('ip', 'addr', 'show', 'dev', IFNAME)).out, new RegExp(`inet ${HOST_IP}/24`), 'the persistent tap keeps its address without a relay');
    assert.notEqual((await ping()).code, 0, 'no relay, no peer');

    const again = await TapRelay.start({ ifname: IFNAME, mac: TAP_MAC, socketPath });
    const p2 = await ping();
    assert.equal(p2.code, 0, `a new relay re-attaches to the same tap: ${p2.out}`);
    await again.stop();

    await deleteTap(IFNAME);
    assert.notEqual((await run('ip', 'link', 'show', IFNAME)).code, 0, 'the interface is gone');
  });

  test('failures are typed errors naming the reason', async () => {
    await assert.rejects(TapRelay.start({ ifname: IFNAME, mac: TAP_MAC, socketPath: join(dir, 'nobody-listens.sock') }),
      (e: unknown) => isVmhostError(e, 'HOST_NIC_PORT_UNREACHABLE') && /connect to the switch port/.test(e.message));
    await assert.rejects(TapRelay.start({ ifname: 'x'.repeat(16), mac: TAP_MAC, socketPath }),
      (e: unknown) => isVmhostError(e, 'HOST_NIC_FAILED') && /1-15 characters/.test(e.message));
  });
});
