// NIC teaming between two hosts, no guests: two daemons cabled by two UDP tunnels each
// (test/support/two-hosts.ts), on each a two-member team and an External switch on it with a
// management-OS vNIC (a tap); host B's tap lives in a network namespace of its own, so the
// host's pings and datagrams from A's tap to B's address really cross both switches and teams.
// - Lacp: both teams reach Collecting/Distributing (Active/Active), each sees the other as its
//   partner; flows spread over both members by the TransportPorts hash (per-member counters).
// - A member pulled (its tunnel's far end closed: Disable-NetAdapter on host B) is Failed on
//   host A by LACP's timeout (3 s, Fast timer) and the ping goes on over the other member; the
//   interruption is measured and printed.
// - Static: all members carry at once, flows spread by hash.
// - Dynamic: one flow sent in bursts 300 ms apart stays on one member within a burst and moves
//   at the gaps (each burst's member from the counters; the gaps measured and printed).
// Needs root (taps, a namespace): skipped otherwise, like test/host-nic.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { waitFor, type TestDaemon } from './support/daemon.ts';
import type { CliTools } from './support/cli-tools.ts';
import { twoCabledHosts } from './support/two-hosts.ts';
import { freeTestNet, tapSkip as skip } from '../src/host/tap-test-support.ts';

const NET = freeTestNet(20, 30);
const A_IP = `${NET}.1`, B_IP = `${NET}.2`;
const NS = `vmhteam${process.pid}`;

interface Member { Name: string; OperationalStatus: string; FailureReason: string; SentFrames: number; ReceivedFrames: number; LacpMuxState?: string; LacpPartner?: string }

function run(cmd: string, ...args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((ok) => execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) => ok({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr })));
}
async function must(cmd: string, ...args: string[]): Promise<void> {
  const r = await run(cmd, ...args);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')}: ${r.out}`);
}

describe('NIC teaming between two hosts: LACP, failover, Static, Dynamic', { skip }, () => {
  let a: TestDaemon, b: TestDaemon, ta: CliTools, tb: CliTools;
  let stop: (() => Promise<void>) | undefined;
  const taps: { a?: string; b?: string } = {};
  before(async () => { ({ a, b, ta, tb, stop } = await twoCabledHosts(2)); });
  after(async () => {
    await stop?.(); // SIGKILL: persistent taps stay
    if (taps.a) await run('ip', 'link', 'del', taps.a);
    if (taps.b) await run('ip', 'netns', 'exec', NS, 'ip', 'link', 'del', taps.b);
    await run('ip', 'netns', 'del', NS);
  });

  /** Polled through the REST route Get-NetLbfoTeamMember uses: a CLI process per poll would blur the timings. */
  const members = async (d: TestDaemon): Promise<Record<string, Member>> =>
    Object.fromEntries(((await d.api('GET', '/api/v1/lbfo-team-members?Team=Team1')).json as Member[]).map((m) => [m.Name, m]));
  const sentDelta = async (d: TestDaemon, fn: () => Promise<unknown>): Promise<Record<string, number>> => {
    const before = await members(d);
    await fn();
    const after = await members(d);
    return Object.fromEntries(Object.keys(after).map((m) => [m, after[m]!.SentFrames - before[m]!.SentFrames]));
  };
  const allActive = async (d: TestDaemon, lacp: boolean) => Object.values(await members(d)).every((m) => m.OperationalStatus === 'Active' && (!lacp || m.LacpMuxState === 'CollectingDistributing'));
  const ping = (n: number, interval = 0.2) => run('busybox', 'ping', '-c', String(n), '-i', String(interval), '-W', '2', B_IP);

  /** UDP datagrams from A's address to B's: `flows` destination ports, `each` datagrams per flow, sent back to back. */
  /** Returns when the last datagram was handed to the kernel (performance.now()). */
  async function udpFlows(flows: number, each: number): Promise<number> {
    const s = createSocket('udp4');
    await new Promise<void>((ok, fail) => { s.once('error', fail); s.bind(0, A_IP, () => ok()); });
    const sends: Promise<void>[] = [];
    for (let f = 0; f < flows; f++) for (let i = 0; i < each; i++) sends.push(new Promise((ok) => s.send(Buffer.alloc(64, f), 9000 + f, B_IP, () => ok())));
    await Promise.all(sends);
    const last = performance.now();
    await new Promise((r) => setTimeout(r, 200)); // through the taps and both switches
    await new Promise<void>((ok) => s.close(() => ok()));
    return last;
  }

  test('LACP forms Active/Active, a pulled member fails over, Static spreads by hash, Dynamic moves a flow only at a gap', { timeout: 90_000 }, async () => {
    const t0 = Date.now();
    await Promise.all([ta, tb].map(async (t) => {
      await t.ok('New-NetLbfoTeam', '-Name', 'Team1', '-TeamMembers', 'NIC1,NIC2', '-TeamingMode', 'Lacp', '-LoadBalancingAlgorithm', 'TransportPorts');
      await t.ok('New-VMSwitch', '-Name', 'Ext', '-NetAdapterName', 'Team1', '-AllowManagementOS', '$true');
    }));
    const formedAt = Date.now();
    await waitFor('LACP Active/Active on both hosts', 15_000, async () => (await allActive(a, true)) && (await allActive(b, true)));
    console.log(`# LACP: both teams Collecting/Distributing ${Date.now() - formedAt} ms after the switches bound them`);
    const team = await ta.json<{ TeamingMode: string; LacpTimer: string; Status: string }>('Get-NetLbfoTeam', 'Team1');
    assert.deepEqual([team.TeamingMode, team.LacpTimer, team.Status], ['Lacp', 'Fast', 'Up']);
    const [ma, mb] = [await members(a), await members(b)];
    assert.match(ma.NIC1!.LacpPartner!, /^32768,02:[0-9a-f:]+ key 1 port 1$/, 'A\'s NIC1 partner: B\'s system, its port 1');
    assert.equal(ma.NIC1!.LacpPartner!.split(' ')[0], ma.NIC2!.LacpPartner!.split(' ')[0], 'one partner system on both members');
    assert.notEqual(ma.NIC1!.LacpPartner!.split(' ')[0], mb.NIC1!.LacpPartner!.split(' ')[0], 'each host sees the other');

    // The hosts' vNICs: A's tap here, B's in its own namespace.
    const vnic = async (t: CliTools) => (await t.json<{ InterfaceName: string }[]>('Get-VMNetworkAdapter', '-ManagementOS'))[0]!.InterfaceName;
    [taps.a, taps.b] = await Promise.all([vnic(ta), vnic(tb)]);
    await must('ip', 'netns', 'add', NS);
    await must('ip', 'link', 'set', taps.b, 'netns', NS);
    await must('ip', 'netns', 'exec', NS, 'ip', 'addr', 'add', `${B_IP}/24`, 'dev', taps.b);
    await must('ip', 'netns', 'exec', NS, 'ip', 'link', 'set', taps.b, 'up');
    await must('ip', 'addr', 'add', `${A_IP}/24`, 'dev', taps.a);
    await waitFor(`host A pings ${B_IP} across the teams`, 15_000, async () => (await ping(1)).code === 0);

    // LACP + TransportPorts: 32 flows over both members, each side.
    const spread = async (mode: string) => {
      const bBefore = await members(b);
      const sent = await sentDelta(a, () => udpFlows(32, 4));
      const bAfter = await members(b);
      const got = Object.keys(bAfter).map((m) => bAfter[m]!.ReceivedFrames - bBefore[m]!.ReceivedFrames);
      console.log(`# ${mode}: 32 flows × 4 datagrams: host A sent ${JSON.stringify(sent)}, host B received ${got.join(' / ')}`);
      assert.ok(Object.values(sent).every((n) => n >= 24), `${mode}: both members of A carry flows`);
      assert.ok(got.every((n) => n >= 24), `${mode}: both members of B receive`);
    };
    await spread('Lacp');

    // Which member carries the ping (one flow: the ICMP 2-tuple)?
    const pinged = await sentDelta(a, async () => { assert.equal((await ping(10, 0.05)).code, 0); });
    const [pingMember, other] = Object.entries(pinged).sort((x, y) => y[1] - x[1]).map(([m]) => m) as [string, string];
    assert.ok(pinged[pingMember]! >= 10, `the ping leaves through one member: ${JSON.stringify(pinged)}`);

    // Pull that member on host B while A pings every 0.1 s (through the REST route
    // Disable-NetAdapter uses: a CLI process would start at no known moment on a loaded machine).
    const pinging = ping(60, 0.1);
    const pingStart = Date.now();
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await b.api('POST', `/api/v1/net-adapters/${pingMember}/disable`)).status, 204);
    const pulled = Date.now();
    await waitFor(`host A sees ${pingMember} Failed`, 10_000, async () => (await members(a))[pingMember]!.OperationalStatus === 'Failed');
    const detected = Date.now() - pulled;
    const seen = await members(a);
    assert.deepEqual([seen[pingMember]!.FailureReason, seen[other]!.OperationalStatus], ['LacpNegotiationIssue', 'Active']);
    const r = await pinging;
    const seqs = [...r.out.matchAll(/seq=(\d+)/g)].map((x) => Number(x[1]));
    let gap = 0;
    for (let i = 1; i < seqs.length; i++) gap = Math.max(gap, seqs[i]! - seqs[i - 1]! - 1);
    console.log(`# ${pingMember} pulled on host B ${pulled - pingStart} ms into the ping: host A's LACP took it out after ${detected} ms; the ping lost ${60 - seqs.length} of 60 (longest gap ${gap} = ${(gap * 0.1).toFixed(1)} s)`);
    assert.ok(pulled + detected < pingStart + 5000, 'the member was out before the ping\'s last second');
    assert.ok(detected >= 500 && detected < 6000, `LACP timeout, not at once: ${detected} ms`);
    assert.ok(gap >= 1 && gap * 0.1 <= 4.5, `the ping to the pulled member stopped until LACP moved it: ${(gap * 0.1).toFixed(1)} s`);
    assert.ok(seqs.includes(59) || seqs.includes(58), `the ping goes on over ${other}`);
    assert.equal((await ta.json<{ Status: string }>('Get-NetLbfoTeam', 'Team1')).Status, 'Degraded');
    await tb.ok('Enable-NetAdapter', pingMember);
    await waitFor(`${pingMember} aggregated again on both hosts`, 15_000, async () => (await allActive(a, true)) && (await allActive(b, true)));

    // Static: no negotiation, every member carries at once.
    await Promise.all([ta, tb].map((t) => t.ok('Set-NetLbfoTeam', 'Team1', '-TeamingMode', 'Static')));
    assert.ok(await allActive(a, false), 'Static: Active without waiting');
    await spread('Static');

    // Dynamic on host A: one flow in 4 bursts of 40 datagrams, 300 ms apart.
    await ta.ok('Set-NetLbfoTeam', 'Team1', '-LoadBalancingAlgorithm', 'Dynamic');
    const bursts: string[] = [];
    const gaps: number[] = [];
    let lastSent = 0;
    for (let k = 0; k < 4; k++) {
      const sent = await sentDelta(a, async () => {
        if (k > 0) gaps.push(performance.now() - lastSent);
        lastSent = await udpFlows(1, 40);
      });
      const [top, low] = Object.entries(sent).sort((x, y) => y[1] - x[1]) as [[string, number], [string, number]];
      bursts.push(top[0]);
      assert.ok(top[1] >= 40 && low[1] <= 3, `burst ${k}: one member carries it: ${JSON.stringify(sent)}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    const moves = bursts.slice(1).filter((m, i) => m !== bursts[i]).length;
    console.log(`# Dynamic: the flow's bursts left on ${bursts.join(' → ')}: ${moves} moves, across idle gaps of ${gaps.map((g) => Math.round(g)).join(', ')} ms (the flowlet gap is 50 ms); none within a burst`);
    assert.ok(moves >= 1, 'the flow moved at a gap');
    console.log(`# whole scenario ${Date.now() - t0} ms`);
  });
});
