// Move-VM between two hosts on shared storage, through the CLI: two daemons on this machine
// whose External switches are joined by a UDP tunnel, the moving guest's disk and ISO in a
// directory both reach. A peer guest on the destination pings the moving guest every 20 ms
// across the tunnel, before, during and after the move: the longest gap is the blackout. The
// guest's uptime and a counter process go on; Get-VM on A no longer lists it, on B it runs
// with the same Id, MAC, VLAN and Meter counts. Refusals (unreachable, wrong credential, name
// clash, memory, missing ISO) leave it running on A; a destination SIGKILLed mid-move leaves
// nothing behind on B once it restarts. Then it moves back to A and there again with
// Compression while it dirties memory at 50 MB/s, the peer measuring the blackout each time.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TestDaemon, freePort, freeUdpPort, runCli, waitFor, type CliResult } from './support/daemon.ts';
import { cliTools, type CliTools } from './support/cli-tools.ts';
import { pingBlackout } from './support/ping-blackout.ts';

/** The Measure-VM fields the move checks carry over. */
interface Measured {
  MeteringStartTime: string;
  MeteringDuration: { TotalSeconds: number };
  NetworkInboundBytes: number;
  NetworkOutboundBytes: number;
  AggregatedDiskDataWrittenBytes: number;
  CpuSeconds: number;
}

const IP = (n: number) => `10.89.0.${n}`;
const adapterFlag = (local: number, remote: number) => ['--net-adapter', `Uplink=udp:127.0.0.1:${local}->127.0.0.1:${remote}`];
type Vm = { Id: string; Name: string; State: string; Uptime: number | string };
/** A cmdlet's -Json answer for one object, whether it came as the object or a list of one. */
const one = <T>(x: T | T[]): T => (Array.isArray(x) ? x[0]! : x);

describe('Move-VM: live migration between two hosts on shared storage', () => {
  let a: TestDaemon;
  let b: TestDaemon;
  let ta: CliTools;
  let tb: CliTools;
  let shared = '';
  let cliConfig = '';
  let bDest = '';
  /** The CLI as an admin of host A whose credential store (VMHOST_CONFIG_DIR) holds host B's. */
  const cliA = (...args: string[]): Promise<CliResult> => runCli(args, { VMHOST_URL: a.url, VMHOST_TOKEN: a.token, VMHOST_CONFIG_DIR: cliConfig });
  const failsA = async (re: RegExp, ...args: string[]): Promise<string> => {
    const r = await cliA(...args);
    assert.notEqual(r.code, 0, `${args.join(' ')} should fail`);
    assert.match(r.stderr.trim(), re);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one-line error: ${r.stderr}`);
    return r.stderr.trim();
  };
  const okA = async (...args: string[]): Promise<string> => {
    const r = await cliA(...args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  /**
   * `move` run while the peer on B pings web1 every 20 ms: its result, the longest wait between
   * two replies (the blackout, support/ping-blackout.ts) and the last 25 replies' sequence
   * numbers (from 2 s after the move).
   */
  const watched = async <T>(move: () => Promise<T>): Promise<{ result: T; took: number; replies: number; blackoutMs: number; tail: number[] }> => {
    await tb.sh('peer', `setsid ping -i 0.02 -W 1 ${IP(1)} </dev/null >/tmp/ping.log 2>&1 & sleep 1`);
    const t = Date.now();
    const result = await move();
    const took = Date.now() - t;
    await new Promise((r) => setTimeout(r, 2000));
    const seen = pingBlackout((await tb.sh('peer', 'kill $(pidof ping) 2>/dev/null; cat /tmp/ping.log')).out, 20);
    return { result, took, replies: seen.replies, blackoutMs: seen.blackoutMs, tail: seen.seqs.slice(-25) };
  };
  const stillOnA = async (why: string): Promise<void> => {
    const vm = await ta.json<Vm>('Get-VM', 'web1');
    assert.equal(vm.State, 'Running', `web1 still runs on A after ${why}`);
    assert.equal((await ta.sh('web1', 'true')).code, 0, `web1 answers on A after ${why}`);
    assert.deepEqual((await tb.json<Vm[]>('Get-VM')).map((v) => v.Name), ['peer'], `nothing of web1 on B after ${why}`);
  };

  before(async () => {
    const [pa, pb] = [await freeUdpPort(), await freeUdpPort()];
    // B hands out 384 MB: the peer's 256 MB leaves too little for web1 until B is restarted with more.
    [a, b] = await Promise.all([TestDaemon.start(undefined, adapterFlag(pa, pb)), TestDaemon.start(undefined, [...adapterFlag(pb, pa), '--memory-capacity', '384MB'])]);
    ta = cliTools(a);
    tb = cliTools(b);
    shared = await mkdtemp(join(tmpdir(), 'vmhost-shared-'));
    cliConfig = await mkdtemp(join(tmpdir(), 'vmhost-cli-'));
    bDest = `127.0.0.1:${b.port}`;
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await rm(shared, { recursive: true, force: true });
    await rm(cliConfig, { recursive: true, force: true });
  });

  test('settings: Set-VMHost, Enable-/Disable-VMMigration, shown by Get-VMHost; bad values refused', async () => {
    const h0 = await ta.json<Record<string, unknown>>('Get-VMHost');
    assert.deepEqual([h0.VirtualMachineMigrationEnabled, h0.MaximumVirtualMachineMigrations, h0.VirtualMachineMigrationPerformanceOption], [false, 2, 'TCPIP']);
    await ta.ok('Enable-VMMigration');
    await tb.ok('Enable-VMMigration');
    const h1 = await ta.json<Record<string, unknown>>('Set-VMHost', '-PassThru', '-MaximumVirtualMachineMigrations', '3', '-VirtualMachineMigrationPerformanceOption', 'Compression',
      '-VirtualMachineMigrationAuthenticationType', 'Kerberos', '-UseAnyNetworkForMigration', '$true');
    assert.deepEqual([h1.VirtualMachineMigrationEnabled, h1.MaximumVirtualMachineMigrations, h1.VirtualMachineMigrationPerformanceOption, h1.VirtualMachineMigrationAuthenticationType, h1.UseAnyNetworkForMigration],
      [true, 3, 'Compression', 'Kerberos', true]);
    assert.match(await ta.ok('Get-VMHost'), /VirtualMachineMigrationPerformanceOption\s*:\s*Compression/);
    await ta.fails(/MaximumVirtualMachineMigrations/, 'Set-VMHost', '-MaximumVirtualMachineMigrations', '0');
    await ta.fails(/VirtualMachineMigrationPerformanceOption/, 'Set-VMHost', '-VirtualMachineMigrationPerformanceOption', 'Carrier');
    await ta.ok('Set-VMHost', '-VirtualMachineMigrationPerformanceOption', 'TCPIP', '-MaximumVirtualMachineMigrations', '2');
    await tb.ok('Disable-VMMigration');
    assert.equal((await tb.json<Record<string, unknown>>('Get-VMHost')).VirtualMachineMigrationEnabled, false);
    await tb.ok('Enable-VMMigration');
  });

  test('a guest moves A → B while a peer on B pings it every 20 ms; refusals and a killed destination leave it on A; back and there again with Compression under a dirtying guest', { timeout: 480_000 }, async (tc) => {
    const t0 = Date.now();
    const disk = join(shared, 'web1.vhdx');
    const iso = join(shared, 'tools.iso');
    // The ISO is inserted into a running VM, so QEMU's own user must read it.
    await chmod(shared, 0o755);
    await writeFile(iso, Buffer.alloc(1 << 20), { mode: 0o644 });
    await ta.ok('New-VMSwitch', 'Ext', '-NetAdapterName', 'Uplink');
    await tb.ok('New-VMSwitch', 'Ext', '-NetAdapterName', 'Uplink');
    await ta.ok('New-VHD', '-Path', disk, '-SizeBytes', '64MB', '-Dynamic');
    await ta.ok('New-VM', 'web1', '-MemoryStartupBytes', '256MB', '-SwitchName', 'Ext');
    await ta.ok('Add-VMHardDiskDrive', '-VMName', 'web1', '-Path', disk, '-ControllerType', 'SCSI');
    await ta.ok('Add-VMDvdDrive', '-VMName', 'web1');
    await tb.ok('New-VM', 'peer', '-MemoryStartupBytes', '256MB', '-SwitchName', 'Ext');
    for (const [t, vm] of [[ta, 'web1'], [tb, 'peer']] as const) await t.ok('Set-VMNetworkAdapterVlan', '-VMName', vm, '-Access', '-VlanId', '10');
    await ta.ok('Add-VMNetworkAdapterAcl', '-VMName', 'web1', '-Direction', 'Both', '-Action', 'Meter', '-RemoteIPAddress', IP(2));
    await ta.ok('Enable-VMResourceMetering', 'web1');
    await Promise.all([ta.ok('Start-VM', 'web1'), tb.ok('Start-VM', 'peer')]);
    await Promise.all([ta.heartbeat('web1'), tb.heartbeat('peer')]);
    // Inserted once running: a DVD with media at start would make the firmware boot it instead of the test guest.
    await ta.ok('Set-VMDvdDrive', '-VMName', 'web1', '-Path', iso);
    assert.equal((await ta.sh('web1', `ip addr add ${IP(1)}/24 dev eth0 && ip link set eth0 up`)).code, 0);
    assert.equal((await tb.sh('peer', `ip addr add ${IP(2)}/24 dev eth0 && ip link set eth0 up`)).code, 0);
    assert.equal((await tb.sh('peer', `ping -c 3 -W 2 ${IP(1)}`)).code, 0, 'the peer on B reaches web1 on A across the tunnel');
    // A counter process in the guest, detached from the agent's process group.
    await ta.sh('web1', 'echo \'i=0; while true; do i=$((i+1)); echo $i > /tmp/counter; sleep 0.1; done\' > /tmp/count.sh; setsid sh /tmp/count.sh </dev/null >/dev/null 2>&1 & sleep 1');
    console.log(`# both guests up and addressed in ${Date.now() - t0} ms`);

    // Refusals, each leaving web1 running on A and nothing on B.
    const closed = `127.0.0.1:${await freePort()}`;
    await okA('Set-VMHostCredential', '-ComputerName', closed, '-Token', 'whatever');
    await failsA(/cannot reach the host at http:\/\/127\.0\.0\.1:\d+/, 'Move-VM', 'web1', '-DestinationHost', closed);
    await failsA(/no credential stored for 127\.0\.0\.1:\d+/, 'Move-VM', 'web1', '-DestinationHost', bDest);
    await okA('Set-VMHostCredential', '-ComputerName', bDest, '-Token', 'not-the-token');
    await failsA(/refused the token/, 'Move-VM', 'web1', '-DestinationHost', bDest);
    await okA('Set-VMHostCredential', '-ComputerName', bDest, '-Token', b.token);
    await failsA(/Startup memory 256 MB is more than this host has \(128 MB\)/, 'Move-VM', 'web1', '-DestinationHost', bDest);
    await b.terminate();
    b.args = b.args.map((x) => (x === '384MB' ? '1GB' : x));
    await b.launch();
    await tb.ok('New-VM', 'web1', '-MemoryStartupBytes', '128MB');
    await failsA(/A virtual machine named 'web1' already exists on this host/, 'Move-VM', 'web1', '-DestinationHost', bDest);
    await tb.ok('Remove-VM', 'web1', '-Force');
    await rename(iso, `${iso}.away`);
    await failsA(/The ISO image .*tools\.iso was not found/, 'Move-VM', 'web1', '-DestinationHost', bDest);
    await rename(`${iso}.away`, iso);
    await stillOnA('the refusals');

    // The destination SIGKILLed once it has staged the VM (its QEMU started, nothing committed).
    let settled: CliResult | undefined;
    const staging = cliA('Move-VM', 'web1', '-DestinationHost', bDest).then((r) => (settled = r));
    await waitFor('B staging web1', 60_000, async () => {
      assert.equal(settled, undefined, `the move ended before B staged it: ${settled?.stderr}`);
      for (const id of await readdir(join(b.dataDir, 'vms'))) {
        if ((await readFile(join(b.dataDir, 'vms', id, 'incoming.json'), 'utf8').catch(() => '')).includes('"pid"')) return true;
      }
      return false;
    });
    await b.kill();
    const killed = await staging;
    assert.notEqual(killed.code, 0, 'the move fails when the destination dies');
    console.log(`# move with B killed mid-way: ${killed.stderr.trim()}`);
    await b.launch();
    await stillOnA('a killed destination');
    const folders = await readdir(join(b.dataDir, 'vms'));
    assert.equal(folders.length, 1, `only the peer's folder is left on B: ${folders.join(', ')}`);
    assert.match(await readFile(join(b.dataDir, 'events.jsonl'), 'utf8'), /VM_MOVE_ABANDONED/);

    // Stop-Job cancels a move: the VM runs on here, the destination drops what it staged.
    const job = JSON.parse(await okA('Move-VM', 'web1', '-DestinationHost', bDest, '-AsJob', '-Json')) as { Id: string };
    await okA('Stop-Job', job.Id);
    const stopped = await waitFor('the cancelled move to end', 60_000, async () => {
      const j = await ta.json<{ State: string; StatusDescription: string }>('Get-Job', job.Id);
      return j.State !== 'Running' && j.State !== 'Queued' && j;
    });
    assert.equal(stopped.State, 'Stopped', JSON.stringify(stopped));
    await waitFor('B to drop the cancelled move', 30_000, async () => (await readdir(join(b.dataDir, 'vms'))).length === 1);
    await stillOnA('Stop-Job');

    // The move, watched from the peer on B.
    const before = await ta.json<Vm & { NetworkAdapters?: unknown }>('Get-VM', 'web1');
    const mac = one(await ta.json<{ MacAddress: string }>('Get-VMNetworkAdapter', '-VMName', 'web1')).MacAddress;
    assert.match(mac, /^[0-9A-F]{12}$|^([0-9A-F]{2}:){5}[0-9A-F]{2}$/i);
    const meter0 = one(await ta.json<{ MeteredInboundBytes: number; MeteredOutboundBytes: number }>('Get-VMNetworkAdapterAcl', '-VMName', 'web1'));
    const count0 = Number((await ta.sh('web1', 'cat /tmp/counter')).out);
    const measured0 = await ta.json<Measured>('Measure-VM', 'web1');
    const up0 = Number((await ta.sh('web1', 'cut -d" " -f1 /proc/uptime')).out);
    // B's switch captured whole through the move: when web1's MAC was first announced there.
    const pcap = join(shared, 'b-ext.pcap');
    assert.equal((await b.api('POST', '/api/v1/switches/Ext/capture', { Path: pcap })).status, 201);
    const first = await watched(() => okA('Move-VM', 'web1', '-DestinationHost', bDest, '-Json').catch(async (err: unknown) => {
      // What each host logged about the failed move (the destination's reason for dropping it).
      for (const [n, h] of [['A', a], ['B', b]] as const) console.log(`# ${n} events:\n${(await readFile(join(h.dataDir, 'events.jsonl'), 'utf8')).split('\n').filter((l) => /MOVE|MIGRAT/.test(l)).slice(-6).join('\n')}`);
      throw err;
    }));
    const moved = JSON.parse(first.result) as Vm;
    assert.equal(moved.Id, before.Id);
    // The new ordering, observed: B's switch learned web1's MAC on its port (the RARP B announced
    // from it) before QEMU resumed the guest there (QEMU's own RESUME event time, in B's
    // VM_MOVED_IN; one clock: both daemons run on this machine). QEMU's announce-self alone comes only after it.
    assert.equal((await b.api('DELETE', '/api/v1/switches/Ext/capture')).status, 200);
    const colonMac = mac.replace(/[:-]/g, '').toLowerCase().replace(/(..)(?!$)/g, '$1:');
    const { stdout: rarps } = await promisify(execFile)('tshark', ['-r', pcap, '-Y', `eth.type == 0x8035 && eth.src == ${colonMac}`, '-T', 'fields', '-e', 'frame.time_epoch']);
    await rm(pcap, { force: true });
    const firstRarp = Math.min(...rarps.split('\n').filter(Boolean).map((t) => Number(t) * 1000));
    const resumed = Number(/guest resumed (\d+)/.exec(await readFile(join(b.dataDir, 'events.jsonl'), 'utf8'))?.[1]);
    assert.ok(Number.isFinite(firstRarp) && Number.isFinite(resumed), `a RARP from ${colonMac} on B's switch (${rarps.trim()}) and B's resume time (${resumed})`);
    assert.ok(firstRarp <= resumed, `web1's MAC announced on B's switch (${firstRarp}) before its guest resumed there (${resumed})`);
    console.log(`# Move-VM took ${first.took} ms; ${first.replies} replies, blackout ≈ ${first.blackoutMs} ms`);
    assert.ok(first.replies > 50, 'the peer got replies through the move');

    assert.deepEqual(((await a.api('GET', '/api/v1/vms')).json as Vm[]).map((v) => v.Name), [], 'A no longer has web1');
    const onB = await tb.json<Vm>('Get-VM', 'web1');
    assert.deepEqual([onB.Id, onB.State], [before.Id, 'Running']);
    assert.equal(one(await tb.json<{ MacAddress: string }>('Get-VMNetworkAdapter', '-VMName', 'web1')).MacAddress, mac);
    assert.equal(one(await tb.json<{ AccessVlanId: number }>('Get-VMNetworkAdapterVlan', '-VMName', 'web1')).AccessVlanId, 10);
    const meter1 = one(await tb.json<{ MeteredInboundBytes: number; MeteredOutboundBytes: number }>('Get-VMNetworkAdapterAcl', '-VMName', 'web1'));
    assert.ok(meter1.MeteredInboundBytes >= meter0.MeteredInboundBytes && meter1.MeteredOutboundBytes > meter0.MeteredOutboundBytes, `Meter counts carried and counting: ${JSON.stringify([meter0, meter1])}`);
    await tb.heartbeat('web1');
    // Resource metering went along (as of A's last 1 s sample) and counts on: B's report only grows from A's.
    const measured1 = await tb.json<Measured>('Measure-VM', 'web1');
    assert.equal(measured1.MeteringStartTime, measured0.MeteringStartTime);
    for (const k of ['NetworkInboundBytes', 'NetworkOutboundBytes', 'AggregatedDiskDataWrittenBytes', 'CpuSeconds'] as const) {
      assert.ok(measured1[k] >= measured0[k], `Measure-VM's ${k} carried: ${measured0[k]} on A → ${measured1[k]} on B`);
    }
    assert.ok(measured1.MeteringDuration.TotalSeconds > measured0.MeteringDuration.TotalSeconds);
    const count1 = Number((await tb.sh('web1', 'cat /tmp/counter')).out);
    const up1 = Number((await tb.sh('web1', 'cut -d" " -f1 /proc/uptime')).out);
    assert.ok(count1 > count0 && up1 > up0, `the counter (${count0} → ${count1}) and uptime (${up0} → ${up1} s) go on`);
    assert.equal((await tb.sh('web1', 'dd if=/dev/urandom of=/dev/sda bs=4k count=16 conv=fsync 2>&1')).code, 0, 'the disk is writable on B');
    assert.equal((await tb.sh('peer', `ping -c 2 -W 2 ${IP(1)}`)).code, 0);
    const events = await readFile(join(a.dataDir, 'events.jsonl'), 'utf8') + await readFile(join(b.dataDir, 'events.jsonl'), 'utf8');
    for (const m of events.matchAll(/"Message":"(VM (moved (in|to)) [^"]*)"/g)) console.log(`# ${m[1]}`);

    // Back to A and there again, both with Compression (multifd zstd + auto-converge), while the
    // guest dirties 64 MiB at 50 MB/s (guest-agent/memdirty.c): each move converges, the peer on B
    // measures the blackout and its pings are answered again, uninterrupted, once the guest has
    // landed; the dirtier goes on and the guest never rebooted (its uptime goes on, no panic on its
    // console). This is issue 11's move-back defect: QEMU 7.2 under TCG did not re-send pages the
    // guest kept writing, the destination ran with stale kernel pages and panicked — see
    // TCG_RAM_PAD in src/qemu/command-line.ts.
    await tc.test('back to A and there again with Compression under a dirtying guest: it converges, the peer measures the blackout, the guest goes on', async () => {
      const cliB = (...args: string[]): Promise<CliResult> => runCli(args, { VMHOST_URL: b.url, VMHOST_TOKEN: b.token, VMHOST_CONFIG_DIR: cliConfig });
      await Promise.all([ta.ok('Set-VMHost', '-VirtualMachineMigrationPerformanceOption', 'Compression'), tb.ok('Set-VMHost', '-VirtualMachineMigrationPerformanceOption', 'Compression')]);
      assert.equal((await cliB('Set-VMHostCredential', '-ComputerName', `127.0.0.1:${a.port}`, '-Token', a.token)).code, 0);
      assert.match((await tb.sh('web1', 'setsid vmhost-memdirty 64 50 </dev/null >/dev/null 2>&1 & sleep 1; pidof vmhost-memdirty')).out.trim(), /^\d+$/, 'the dirtier runs');
      const dirtied = async (t: CliTools) => Number((await t.sh('web1', 'cat /tmp/memdirty')).out.trim());
      const uptime = async (t: CliTools) => Number((await t.sh('web1', 'cut -d" " -f1 /proc/uptime')).out);
      let d = await waitFor('the dirtier under way', 30_000, async () => { const n = await dirtied(tb); return n > 0 && n; });
      let up = await uptime(tb);
      const legs = [
        { from: b, to: a, tTo: ta, move: () => cliB('Move-VM', 'web1', '-DestinationHost', `127.0.0.1:${a.port}`, '-Json'), label: 'B → A' },
        { from: a, to: b, tTo: tb, move: () => cliA('Move-VM', 'web1', '-DestinationHost', bDest, '-Json'), label: 'A → B' },
      ];
      for (const leg of legs) {
        const moved = await watched(leg.move);
        assert.equal(moved.result.code, 0, `Move-VM ${leg.label} under dirtying: ${moved.result.stderr}`);
        assert.equal((await leg.tTo.json<Vm>('Get-VM', 'web1')).State, 'Running');
        assert.ok(!((await leg.from.api('GET', '/api/v1/vms')).json as Vm[]).some((v) => v.Name === 'web1'), `web1 left ${leg.label.slice(0, 1)}`);
        await new Promise((r) => setTimeout(r, 300)); // the event log is written behind the answer
        const out = [...(await readFile(join(leg.from.dataDir, 'events.jsonl'), 'utf8')).matchAll(/VM moved to [^"]*QEMU: (\d+) ms, downtime (\d+) ms, (\d+) MiB (over QEMU's TLS|through the relay)[^"]*/g)].at(-1);
        // The multifd channels went straight between the two QEMUs (migration-tls.ts), not through the relay.
        assert.equal(out?.[4], "over QEMU's TLS", `the stream of ${leg.label}`);
        // How long QEMU held its lock in the pre-copy (the guest held with it: BENCHMARKS.md, "what stops the guest in the pre-copy"); printed, not bounded.
        const lock = /QEMU's lock held up to (\d+) ms in (\S+) at \d+/.exec(out?.[0] ?? '');
        assert.ok(lock, `the move's event names how long QEMU's lock was held: ${out?.[0]}`);
        console.log(`# Compression move ${leg.label} under 50 MB/s dirtying: took ${moved.took} ms (QEMU ${out?.[1]} ms, ${out?.[3]} MiB sent, downtime ${out?.[2]} ms); `
          + `${moved.replies} replies, blackout ≈ ${moved.blackoutMs} ms; QEMU's lock held up to ${lock[1]} ms (in ${lock[2]})`);
        // Lost pings only within the move: from 2 s after it, every ping is answered.
        assert.ok(moved.tail.length === 25 && moved.tail.at(-1)! - moved.tail[0]! === 24, `the peer's last pings all answered after the move ${leg.label}: ${moved.tail.join(' ')}`);
        const d1 = await waitFor(`the dirtier to go on after ${leg.label}`, 30_000, async () => { const n = await dirtied(leg.tTo); return n > d && n; });
        const up1 = await uptime(leg.tTo);
        assert.ok(up1 > up, `the guest did not reboot: uptime ${up} → ${up1} s`);
        const serial = await readFile(join(leg.to.dataDir, 'vms', before.Id, 'serial.log'), 'utf8');
        assert.doesNotMatch(serial, /Kernel panic|BUG: /, 'no panic on the guest console');
        [d, up] = [d1, up1];
      }
    });
    console.log(`# whole test ${Date.now() - t0} ms`);
  });
});
