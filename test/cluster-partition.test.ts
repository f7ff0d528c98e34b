// No split-brain (issue 14, item 3): four vmhostd nodes, each with its own etcd member, and three
// clustered test guests, one made on each of the first three nodes (the fourth starts empty: see
// "Timing"). Each guest runs a writer that appends `counter
// node incarnation` records to its own disk in the shared folder (support/counter-writer.ts).
// Each cycle cuts off a node whose guest has written RECORDS_PER_CYCLE records in this boot
// (support/partition.ts: its etcd member frozen, its daemon's links to the others cut): the cut
// node, unable to renew its lease, turns its VMs off by itself; the majority sees it Down when its
// lease expires and restarts them — the claim only after etcd deleted the old ownership key (its
// lease expired: a DELETE in the key's history before the new owner's PUT), and after the cut
// node said it had turned them off. The cut node is healed; the next cycle cuts another node once
// every node is Up again. At the end every guest's records are read back: no counter forked.
//
// Why several guests, and why that proves as much as one guest rebooted every cycle: a cycle's
// proof needs, at the cut, a writer on the cut node that has written in this boot (it would go on
// writing, and fork the counter, if the node were not fenced), and afterwards the role restarted on
// the majority with its writer resuming where the old one stopped. Both still hold for every cut
// guest: the cut node is one whose guest's writer has written RECORDS_PER_CYCLE records in this
// boot, and every later incarnation of that guest — including one final write per guest — must
// continue its counter on disk. What is not waited for is the restarted guest's boot (a TCG boot
// is most of a cycle): while it boots, the next cycle cuts a node whose guest already writes. Each
// guest is a separate role, disk, ownership key and fencing token, so one guest's proof never
// leans on another's.
//
// Timing. A cycle is mostly the lease: from the cut until etcd expires the cut node's lease. The
// test cluster's lease is renewed every 500 ms with a TTL of 3 s (`--cluster-keepalive`,
// `--cluster-lease-ttl`; the defaults are 1000 ms and 4 s), and its etcd runs a heartbeat of 50 ms
// and an election timeout of 500 ms (etcd's defaults: 100 ms, 1 s). Why both: when the cut node's
// member led etcd, the others have no leader until they elect one (one to two election timeouts),
// and meanwhile no keepalive of theirs is answered; a node rides out TTL − 1 s − one keepalive
// period without an answer (here 1.5 s) before it fences itself. With etcd's default 1 s election
// timeout a TTL of 3 s isolated majority nodes after such a cut (the election took 1–2 s); with
// 500 ms the election ends within about 1 s. The new leader also extends every lease by its
// election timeout, so a cut of the leader is detected 0.5–1.5 s later than another cut (~3 s):
// the test cuts a node whose member does not lead when it has the choice. The protocol is the
// same — the cut node stops at its last answered keepalive's send time + TTL − 1 s, etcd expires
// the key at + TTL at the earliest.
//
// Why four nodes for three guests: a cut node's guests restart on the least loaded Up nodes, and
// with as many nodes as guests two of them would share a node from the first cut on: that node,
// once cut, restarts two guests, and while either boots no other node may be cut. A spare node
// takes the cut node's one guest; the next cut is another node with one writing guest, and each
// restarted guest has about two cycles to boot before its node's turn.
//
// Cycles: 20 in the default suite. A cycle is the lease (~3 s from the cut to the expiry), the
// restart on the majority (~0.5 s; the restarted guest's boot is not waited for) and the heal, and
// a wait whenever every node with a writing guest also has a guest still booting (a TCG boot); the
// whole test adds ~26 s for the cluster, the first boots and the final writes. 200 under
// VMHOST_LONG=1 (VMHOST_PARTITION_CYCLES overrides).
// Each cycle prints its phases: wait (for a node to cut: every node Up, a guest writing there),
// fencing (cut → the cut node's CLUSTER_NODE_ISOLATED), detection (cut → its lease expired in etcd),
// restart (expiry → its roles Online on the majority), heal (→ its etcd member answers again) and
// up (heal → the node's new lease, seen at the next cycle); the end prints medians and maxima, and
// the CPU time of the test, the daemons with their QEMUs, and etcd.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './support/daemon.ts';
import { clusteredQemuPids } from './support/cluster.ts';
import { describeGuests } from './support/guest-diagnosis.ts';
import { ClusterWatch } from './support/cluster-watch.ts';
import { startPartitionableCluster, type PartitionableCluster } from './support/partition.ts';
import { assertNoFork, readRecords, startWriter, written, type CounterRecord, type HostRead, type Incarnation } from './support/counter-writer.ts';
import { EtcdClient, type EtcdKv, type WatchEvent } from '../src/cluster/etcd-client.ts';
import { ownerKey } from '../src/cluster/keys.ts';

interface GroupView { Name: string; Id: string; OwnerNode: string; State: string }
interface HostEvent { Time: string; Code: string; Message: string }

const NODES = ['node1', 'node2', 'node3', 'node4'];
const GUESTS = ['w1', 'w2', 'w3'];
const CYCLES = Number(process.env.VMHOST_PARTITION_CYCLES ?? (process.env.VMHOST_LONG === '1' ? 200 : 20));
/** Records an incarnation writes before its node may be cut off. */
const RECORDS_PER_CYCLE = 5;
/** Cycles between two checks of the records along the way (the last cycle's is the final, strict one). */
const CHECK_EVERY = 20;
const LEASE = ['--cluster-lease-ttl', '3', '--cluster-keepalive', '500'];
/**
 * A restarted guest that never reports a heartbeat (seen once in CI: the role Online, the guest
 * silent for 5 minutes) is reset by its owner after this grace (heartbeat monitoring), well within
 * the 300 s this test waits for a node to cut; the test guest's boot takes seconds.
 */
const HEARTBEAT_GRACE = ['--cluster-heartbeat-grace', '60'];
/** etcd's heartbeat 50 ms and election timeout 500 ms (its defaults: 100 ms, 1 s): see the header. */
const ETCD_TIMING = ['--heartbeat-interval', '50', '--election-timeout', '500'];

interface Guest {
  vm: string;
  id: string;
  /** The ownership key as the role was created: its history is replayed from there. */
  first: EtcdKv;
  /** Incarnations in the order started (an incarnation = one writer in one boot of the guest). */
  started: Incarnation[];
  /** Incarnations whose node was cut while they wrote: each must have its records on disk. */
  cutWhileWriting: string[];
  /** How often the node owning it was cut (each is one expiry of its ownership key at least). */
  cuts: number;
  /** The block after the last record any writer of it said it had written (fsync'ed): no later writer may start below it. */
  next: number;
  /** Writers that started below `next`: records acknowledged to the guest were gone from its disk (or a read said empty). */
  lost: string[];
}

/** CPU seconds of a process and of its children it has reaped (/proc/PID/stat: utime stime cutime cstime, 100 ticks a second). */
function cpuSeconds(pid: number | undefined): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
  } catch {
    return 0; // gone
  }
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)]!; };

describe('partitions of a four-node cluster: the cut-off node stops its VMs itself, the majority restarts them, the guests\' counters never fork', () => {
  let cluster: PartitionableCluster | undefined;
  let watch: ClusterWatch | undefined;

  before(async () => {
    cluster = await startPartitionableCluster(NODES, () => [...LEASE, ...HEARTBEAT_GRACE], ETCD_TIMING);
  });

  // A failed run keeps what explains it (the data dirs go with the cluster): every daemon's log and events, every etcd member's log, every guest's serial log.
  let failed = false;
  let roleIds: string[] = [];
  after(async () => {
    watch?.close();
    if (failed && cluster) {
      const keep = await mkdtemp(join(tmpdir(), 'vmhost-partition-failed-'));
      for (const [i, d] of cluster.daemons.entries()) {
        const events = await d.api('GET', '/api/v1/events?limit=5000').then((r) => r.text).catch((e: unknown) => String(e));
        await writeFile(join(keep, `${NODES[i]}.log`), `${d.output}\nevents: ${events}\n`);
        const m = cluster.etcd.members[i]!;
        await writeFile(join(keep, `${NODES[i]}.etcd.log`), `exit ${m.proc.exitCode} signal ${m.proc.signalCode}\n${m.log}`);
      }
      for (const [k, id] of roleIds.entries()) await copyFile(join(cluster.shared, 'vms', id, 'serial.log'), join(keep, `${GUESTS[k]}.serial.log`)).catch(() => undefined);
      process.stdout.write(`# kept the daemons' and guests' logs in ${keep}\n`);
    }
    await cluster?.stop();
  });

  test(`${CYCLES} partition/heal cycles`, async () => {
    try {
      await cycles();
    } catch (e) {
      failed = true;
      throw e;
    }
  });

  const cycles = async (): Promise<void> => {
    const c = cluster!;
    const { t, daemons } = c;
    const cpu = (): number[] => [cpuSeconds(process.pid), daemons.reduce((a, d) => a + cpuSeconds(d.proc?.pid), 0), c.etcd.members.reduce((a, m) => a + cpuSeconds(m.proc.pid), 0)];
    const cpu0 = cpu();
    const t0 = Date.now();
    await t[0]!.ok('New-Cluster', '-Name', 'hv', '-Node', NODES.join(','));
    // One guest made on each node, so each role starts owned there; its writer's disk on SCSI (the test guest has no IDE driver), in the shared folder.
    const ids = await Promise.all(GUESTS.map(async (vm, i) => {
      const ti = t[i]!;
      await ti.ok('New-VM', '-Name', vm, '-MemoryStartupBytes', '192MB');
      await ti.ok('New-VHD', '-Path', join(c.shared, `${vm}.vhdx`), '-SizeBytes', '64MB', '-Dynamic');
      await ti.ok('Add-VMHardDiskDrive', '-VMName', vm, '-Path', join(c.shared, `${vm}.vhdx`), '-ControllerType', 'SCSI');
      const g = await ti.json<GroupView>('Add-ClusterVirtualMachineRole', '-VMName', vm);
      assert.equal((await ti.json<GroupView>('Start-ClusterGroup', vm)).State, 'Online');
      return g.Id;
    }));
    roleIds = ids;
    const etcd = new EtcdClient(c.etcd.endpoints);
    const guests: Guest[] = await Promise.all(GUESTS.map(async (vm, i) => ({
      vm, id: ids[i]!, first: (await etcd.range(ownerKey(ids[i]!))).kvs[0]!, started: [], cutWhileWriting: [], cuts: 0, next: 0, lost: [],
    })));
    watch = await ClusterWatch.start(c.etcd.endpoints);
    const w = watch;
    const setupMs = Date.now() - t0;

    const api = (i: number) => daemons[i]!;
    /** A guest's disk as its VHDX file holds it, read by qemu-img (neither the guest nor our engine): its role stopped first. For a read-back that did not parse. */
    const hostRead = (vm: string, node: number): HostRead => async (count) => {
      await t[node]!.ok('Stop-ClusterGroup', vm);
      const dir = await mkdtemp(join(tmpdir(), 'vmhost-host-read-'));
      try {
        const copy = join(dir, 'disk.vhdx');
        await copyFile(join(c.shared, `${vm}.vhdx`), copy);
        // qemu-img dd opens read-only, which refuses a log still to replay: check -r replays it (on the copy).
        try { execFileSync('qemu-img', ['check', '-r', 'all', '-f', 'vhdx', copy], { stdio: 'pipe' }); } catch { /* what it found shows in the blocks */ }
        execFileSync('qemu-img', ['dd', '-f', 'vhdx', '-O', 'raw', 'bs=4096', `count=${count}`, `if=${copy}`, `of=${join(dir, 'raw')}`], { stdio: 'pipe' });
        return await readFile(join(dir, 'raw'));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    };
    const nodeIndex = (name: string): number => NODES.indexOf(name);
    // A cycle's events are among a node's newest few hundred (a whole ring of them would cost each cycle more as the run goes on).
    const eventsOf = async (i: number, code: string, since: number, limit = 300): Promise<HostEvent[]> =>
      ((await api(i).api('GET', `/api/v1/events?limit=${limit}`)).json as HostEvent[]).filter((e) => e.Code === code && Date.parse(e.Time) >= since);
    let incarnations = 0;
    /**
     * Guests whose writer had written enough in this boot: asked again only once the owner, its token or the QEMU changed (an
     * invoke runs a shell in a TCG guest). The QEMU's pid tells the boot, not the uptime: a node whose lease guarantee ran out
     * while etcd kept its lease turns its VMs off and, the keys still its own, starts them again under the same token — a new
     * boot, without a writer, whose uptime soon passes the old one's. A reset inside the same QEMU (heartbeat monitoring's)
     * keeps the pid: a cached answer may then be stale, which costs a cycle its proof at most — the read-back asks the boot itself.
     */
    const enough = new Map<string, { node: number; token: number; pid: number; inc: string }>();

    /** A new writer's first block: below the guest's known end, records written and fsync'ed earlier are gone. Said at once, with the guest's view of those blocks; failed at the end. */
    const noteFirst = async (g: Guest, inc: string, first: number, i: number): Promise<void> => {
      if (first >= g.next) return;
      const seen = await t[i]!.sh(g.vm, `dd if=$(cat /tmp/writer.dev) bs=4096 skip=${first} count=${g.next - first} iflag=direct 2>&1 | tr -d '\\000' | head -c 2000; cat /tmp/writer.searcherr 2>/dev/null`)
        .then((r) => r.out).catch((e: unknown) => String(e));
      const what = `${inc} (on ${NODES[i]}) started at block ${first}, below block ${g.next} an earlier writer had written up to; the guest reads blocks ${first}.. as ${JSON.stringify(seen)}`;
      g.lost.push(what);
      process.stdout.write(`# ${what}\n`);
    };
    /**
     * Where guest g writes now: the node running it Online whose writer has written RECORDS_PER_CYCLE in
     * this boot — a booted guest without a writer gets one, a new incarnation. undefined meanwhile.
     */
    const status = new Map<string, string>();
    const writing = async (g: Guest): Promise<{ node: number; inc: string } | undefined> => {
      const s = w.snapshot;
      const owner = s.owners.get(g.id);
      const st = s.states.get(g.id);
      status.set(g.vm, `owner ${owner?.Node ?? 'none'}, state ${st?.Node ?? '-'} ${st?.State ?? '-'}`);
      if (!owner || st?.Node !== owner.Node || st.State !== 'Online') return undefined;
      const i = nodeIndex(owner.Node);
      const vm = await api(i).api('GET', `/api/v1/vms/${g.vm}`).then((r) => r.json as { Heartbeat?: string; ProcessId?: number | null }).catch(() => undefined);
      if (vm?.Heartbeat !== 'OK') return undefined;
      const pid = vm.ProcessId ?? 0;
      const k = enough.get(g.vm);
      if (k && k.node === i && k.token === owner.modRevision) {
        if (k.pid === pid) return k;
        process.stdout.write(`# ${g.vm} restarted in place on ${NODES[i]} under the same ownership token ${k.token} (QEMU pid ${k.pid} → ${pid}): its writer is asked again\n`);
        enough.delete(g.vm);
      }
      const ws = await written(t[i]!, g.vm).catch((e: unknown) => { status.set(g.vm, `${status.get(g.vm)}, heartbeat OK, writer unknown: ${String(e).slice(0, 200)}`); return null; });
      if (ws === null) return undefined;
      status.set(g.vm, `${status.get(g.vm)}, heartbeat OK, ${ws === undefined ? 'no writer' : `writer at blocks ${ws.first}..${ws.next}`}`);
      if (ws === undefined) {
        const who = { node: NODES[i]!, inc: `${g.vm}.c${++incarnations}` };
        g.started.push(who); // before the start: a writer that starts but is not confirmed still counts in the order
        const { first, readErrors } = await startWriter(t[i]!, g.vm, who);
        // A read the guest could not do on its own disk is a finding of the storage path even when asked again successfully.
        if (readErrors !== '') process.stdout.write(`# ${who.inc} (on ${NODES[i]}): its search for the first empty block met failed reads: ${JSON.stringify(readErrors.slice(0, 500))}\n`);
        await noteFirst(g, who.inc, first, i);
        return undefined;
      }
      if (ws.first >= 0) g.next = Math.max(g.next, ws.next);
      if (ws.next - ws.first < RECORDS_PER_CYCLE) return undefined;
      const at = { node: i, token: owner.modRevision, pid, inc: g.started.at(-1)!.inc };
      enough.set(g.vm, at);
      return at;
    };

    /** The node whose etcd member leads etcd now (undefined: no member says, e.g. during an election). */
    const leaderNode = async (): Promise<number | undefined> => {
      const said = await Promise.all(c.etcd.members.map((m) => fetch(`${m.clientUrl}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(1000) })
        .then((r) => r.json() as Promise<{ header?: { member_id?: string }; leader?: string }>).catch(() => undefined)));
      const k = said.findIndex((x) => x?.leader !== undefined && x.header?.member_id === x.leader);
      return k < 0 ? undefined : k;
    };

    /**
     * A node to cut: every node Up, and on it a guest whose writer has written; never one where another guest is still booting
     * or starting to write (cutting it would restart that guest before its writer proved anything). Of those, first one
     * with fewer guests (each victim is a TCG boot that keeps its next node from being cut), then one whose etcd member
     * does not lead (cutting the leader adds an election and the new leader's lease extension to the detection), then
     * one not cut last time.
     */
    let said = Date.now();
    const pickCut = async (last: number): Promise<{ node: number } | false> => {
      // Waiting long (a TCG boot under load): say why, every 20 s.
      if (Date.now() - said > 20_000) {
        said = Date.now();
        process.stdout.write(`# waiting for a node to cut: Up ${[...w.snapshot.alive.keys()].join(', ')}; ${[...status].map(([vm, x]) => `${vm}: ${x}`).join('; ')}\n`);
      }
      if (NODES.some((n) => !w.snapshot.alive.has(n))) return false;
      const ready = new Set<number>();
      const busy = new Set<number>();
      for (const g of guests) {
        const owner = w.snapshot.owners.get(g.id);
        const at = await writing(g);
        if (at) ready.add(at.node);
        else if (owner) busy.add(nodeIndex(owner.Node));
      }
      const ok = [...ready].filter((i) => !busy.has(i));
      if (ok.length === 0) return false;
      const leader = ok.length > 1 ? await leaderNode() : undefined;
      const guestsOn = (i: number): number => guests.filter((g) => w.snapshot.owners.get(g.id)?.Node === NODES[i]).length;
      const rank = (i: number): number[] => [guestsOn(i), Number(i === leader), Number(i === last)];
      ok.sort((a, b) => { const [x, y] = [rank(a), rank(b)]; const k = x.findIndex((v, j) => v !== y[j]); return k < 0 ? 0 : x[k]! - y[k]!; });
      return { node: ok[0]! };
    };

    /** On a timeout: the nodes' last events and every guest as its owner, QEMU and serial log see it, then the error again. */
    const diagnose = async (e: unknown): Promise<never> => {
      for (let k = 0; k < NODES.length; k++) process.stdout.write(`# ${NODES[k]}'s events: ${JSON.stringify((await api(k).api('GET', '/api/v1/events?limit=40')).json)}\n`);
      const owners = guests.map((g) => { const o = w.snapshot.owners.get(g.id); return { vm: g.vm, owner: o ? nodeIndex(o.Node) : undefined }; });
      for (const line of await describeGuests(daemons, c.shared, owners)) process.stdout.write(`# ${line}\n`);
      throw e;
    };

    /**
     * Guest g's records, read back where its writer writes now. The guest can restart between the test seeing its writer
     * and the read (an isolation under load): that boot has no writer, and the read waits for the next one's records.
     */
    const readBack = async (g: Guest, when: string, running: boolean): Promise<CounterRecord[]> => {
      for (let attempt = 1; ; attempt++) {
        const at = await waitFor(`${g.vm} writes (${when})`, 240_000, () => writing(g)).catch(diagnose);
        const records = await readRecords(t[at.node]!, g.vm, running, hostRead(g.vm, at.node));
        if (records) return records;
        assert.ok(attempt < 3, `${g.vm} (${when}): ${attempt} boots without a writer at the read-back`);
        process.stdout.write(`# ${g.vm} (${when}): restarted before its read-back, no writer in this boot; read again once it writes\n`);
        enough.delete(g.vm);
      }
    };

    const phases = { wait: [] as number[], fencing: [] as number[], detection: [] as number[], restart: [] as number[], heal: [] as number[], up: [] as number[], cycle: [] as number[] };
    let last = -1;
    let pendingUp: Promise<void> | undefined;
    const cyclesAt = Date.now();
    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      const startAt = Date.now();
      said = startAt;
      await pendingUp;
      const { node: cut } = await waitFor(`cycle ${cycle}: a node to cut (every node Up, a guest writing there)`, 300_000, () => pickCut(last)).catch(diagnose);
      const node = NODES[cut]!;
      const others = NODES.map((_, i) => i).filter((i) => i !== cut);

      const cutAt = Date.now();
      c.partition(cut);
      // Its roles at the cut (their keys stay until its lease expires).
      const victims = guests.filter((g) => w.snapshot.owners.get(g.id)?.Node === node);
      for (const g of victims) {
        g.cuts++;
        const k = enough.get(g.vm);
        if (k?.node === cut && k.token === w.snapshot.owners.get(g.id)?.modRevision) g.cutWhileWriting.push(k.inc);
      }
      // The cut node turns its VMs off by itself (its API is still reachable: only etcd traffic is cut).
      const off = waitFor(`${node} turns its VMs off`, 30_000, async () =>
        !((await api(cut).api('GET', '/api/v1/vms')).json as { Name: string }[]).some((v) => GUESTS.includes(v.Name)) && (await clusteredQemuPids(api(cut))).length === 0);
      const downAt = await w.until(`${node} Down (its lease expired)`, 30_000, (s) => !s.alive.has(node) && Date.now());
      const onlineAt = await w.until(`${victims.map((g) => g.vm).join(', ')} Online on the majority`, 90_000, (s) => victims.every((g) => {
        const o = s.owners.get(g.id);
        const st = s.states.get(g.id);
        return o !== undefined && o.Node !== node && st?.Node === o.Node && st.State === 'Online';
      }) && Date.now()).catch(diagnose);
      // Where they were restarted, as seen then: by the print below a restarted role may have moved on (its new owner isolated under load).
      const restartedOn = victims.map((g) => w.snapshot.owners.get(g.id)?.Node);
      await off;

      // Healed at once; its events are read while its member catches up.
      const healAt = Date.now();
      c.heal(cut);
      // Its member answers a linearizable read again (it has a leader): the next cut leaves a majority.
      const member = new EtcdClient([c.etcd.members[cut]!.clientUrl]);
      const [isolated, claimedAll, healedAt] = await Promise.all([
        eventsOf(cut, 'CLUSTER_NODE_ISOLATED', cutAt),
        Promise.all(others.map((i) => eventsOf(i, 'CLUSTER_GROUP_CLAIMED', cutAt))),
        waitFor(`${node}'s etcd member answers`, 30_000, async () => (await member.range('/vmhost/cluster/config')).revision > 0).then(() => Date.now()),
      ]);
      // Order, by the nodes' own event times (one clock): the cut node turned its VMs off before the majority claimed any of them.
      const claimed = claimedAll.flat().filter((e) => victims.some((g) => e.Message.includes(`Role '${g.vm}'`))).sort((a, b) => Date.parse(a.Time) - Date.parse(b.Time));
      assert.ok(isolated.length >= 1 && claimed.length >= victims.length, `${node} says it was isolated, and the majority claimed its roles: ${claimed.map((e) => e.Message).join(' | ')}`);
      assert.ok(Date.parse(isolated[0]!.Time) < Date.parse(claimed[0]!.Time), `${node} stopped (${isolated[0]!.Time}) before the first claim (${claimed[0]!.Time})`);
      // Its daemon's new lease is awaited by the next cycle (it needs every node Up), beside the guests' boots.
      pendingUp = w.until(`${node} Up again`, 60_000, (s) => s.alive.has(node) && Date.now()).then((at) => { phases.up.push(at - healAt); });

      const p = {
        wait: cutAt - startAt, fencing: Date.parse(isolated[0]!.Time) - cutAt, detection: downAt - cutAt, restart: onlineAt - downAt, heal: healedAt - healAt, cycle: healedAt - startAt,
      };
      for (const k of Object.keys(p) as (keyof typeof p)[]) phases[k].push(p[k]);
      process.stdout.write(`# cycle ${cycle}: ${node} cut (${victims.map((g) => g.vm).join(', ')}); wait ${p.wait} ms, fencing ${p.fencing} ms, detection ${p.detection} ms, `
        + `restart ${p.restart} ms on ${victims.map((g, k) => {
          const now = w.snapshot.owners.get(g.id)?.Node;
          return now === restartedOn[k] ? now : `${restartedOn[k]} (now ${now ?? 'no owner'})`;
        }).join(', ')}, heal ${p.heal} ms; cycle ${p.cycle} ms\n`);
      last = cut;
      // A long run checks the records so far every CHECK_EVERY cycles, so a run stopped early still proves its cycles.
      if (cycle % CHECK_EVERY === 0 && cycle < CYCLES) {
        const seen: string[] = [];
        for (const g of guests) {
          const records = await readBack(g, `check after cycle ${cycle}`, true);
          assertNoFork(records, g.started);
          seen.push(`${g.vm} ${records.length}`);
        }
        process.stdout.write(`# check after cycle ${cycle}: records so far ${seen.join(', ')}: no fork\n`);
      }
    }
    await pendingUp;
    const cyclesMs = Date.now() - cyclesAt;

    // Every guest writes once more where it runs now (its last restart resumed its counter), then its records are read back.
    const endAt = Date.now();
    let total = 0;
    for (const g of guests) {
      const records = await readBack(g, 'at the end', false);
      assert.deepEqual(g.lost, [], `${g.vm}: every writer started at or past the end of the records written before it`);
      const per = assertNoFork(records, g.started);
      // Where each incarnation's run lies (first..last counter), so a short run tells overwritten records from a start that never wrote.
      const runs = records.reduce<string[]>((acc, r, k) => (records[k - 1]?.inc === r.inc ? acc : [...acc, `${r.inc}@${r.node} from ${r.counter}`]), []);
      for (const inc of g.cutWhileWriting) {
        assert.ok((per.get(inc) ?? 0) >= RECORDS_PER_CYCLE, `${inc} wrote ${RECORDS_PER_CYCLE} records before its node was cut, ${per.get(inc) ?? 0} on disk; `
          + `started ${g.started.map((x) => `${x.inc}@${x.node}: ${per.get(x.inc) ?? 0}`).join(', ')}; runs ${runs.join(', ')}; cut while writing ${g.cutWhileWriting.join(', ')}`);
      }
      total += records.length;
      process.stdout.write(`# ${g.vm}: ${records.length} records by ${per.size} incarnations, ${g.cuts} cuts of its node (${g.cutWhileWriting.length} while it wrote): no fork\n`);

      // etcd's side, the history of its ownership key replayed: every change of owner went through a
      // DELETE (the old lease expired) — no PUT replaced another owner's key.
      const endRev = (await etcd.range(ownerKey(g.id))).kvs[0]!.modRevision;
      const history: WatchEvent[] = [{ type: 'PUT', kv: g.first }];
      const stop = new AbortController();
      if (endRev > g.first.modRevision) {
        await etcd.watch(ownerKey(g.id), g.first.modRevision + 1, (e) => {
          history.push(e);
          if (e.kv.modRevision >= endRev) stop.abort();
        }, stop.signal);
      }
      const seq = history.map((e) => (e.type === 'DELETE' ? 'DELETE' : `PUT ${(JSON.parse(e.kv.value) as { Node: string }).Node}`));
      for (let i = 1; i < seq.length; i++) {
        if (seq[i]!.startsWith('PUT')) assert.equal(seq[i - 1], 'DELETE', `${g.vm}'s ownership history: ${seq.join(', ')}`);
      }
      // More expiries than cuts: a node whose keepalives went unanswered without a cut (an etcd election under load).
      const expiries = seq.filter((x) => x === 'DELETE').length;
      assert.ok(expiries >= g.cuts, `${g.vm}: one expiry per cut of its node at least: ${seq.join(', ')}`);
    }
    const running = (await Promise.all(daemons.map((d) => clusteredQemuPids(d)))).flat();
    const [test, daemon, etcdCpu] = cpu().map((x, k) => x - cpu0[k]!);
    const qemus = running.reduce((a, pid) => a + cpuSeconds(pid), 0);
    const cpuUsed = `${(test! + daemon! + etcdCpu! + qemus).toFixed(1)} s (test and its CLI calls ${test!.toFixed(1)}, daemons with their exited QEMUs ${daemon!.toFixed(1)}, `
      + `running QEMUs ${qemus.toFixed(1)}, etcd ${etcdCpu!.toFixed(1)})`;
    const isolations = (await Promise.all(NODES.map((_, i) => eventsOf(i, 'CLUSTER_NODE_ISOLATED', 0, 5000)))).flat();
    process.stdout.write(`# ${total} records over ${CYCLES} partitions: no fork; ${isolations.length} isolations for ${CYCLES} cuts\n`);
    process.stdout.write(`# phases (median / max, ms): ${Object.entries(phases).map(([k, v]) => `${k} ${median(v)} / ${Math.max(...v)}`).join(', ')}\n`);
    process.stdout.write(`# wall: setup ${setupMs} ms, ${CYCLES} cycles ${cyclesMs} ms, final writes and checks ${Date.now() - endAt} ms; `
      + `CPU ${cpuUsed}; load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}\n`);
  };
});
