// Move-VM's operations beyond one move (issue 11), two daemons on this machine, diskless
// test guests (nothing to share):
// - simultaneous moves held to the source's -MaximumVirtualMachineMigrations: as many run as
//   the limit allows, the rest wait Queued (Get-Job), never more run at once, and all end
//   Running on B: 4 moves with a limit of 2, the acceptance form (as short as 2 with a limit
//   of 1: 26 s against 30 s on the loaded machine, the guests boot in parallel).
// - a guest dirtying memory at ~50 MB/s (guest-agent/memdirty.c) moves and converges
//   (auto-converge, XBZRLE: migration-settings.ts); the job showed the dirty rate and the
//   expected downtime while it ran, the dirtier goes on counting on B, and the blackout
//   estimate (QEMU's downtime + the destination's hand-over, from both hosts' events) is
//   printed. test/move-vm.test.ts measures a blackout with a pinging peer. VMHOST_LONG=1 also
//   moves a 1 GiB guest dirtying 256 MiB.
// - migration networks: the cmdlets, their refusals, kept across a restart; a destination
//   with no address on its networks and a source whose networks miss the destination's
//   address both refuse the move (the VM runs on on A); with loopback listed it moves.
// - cross-version: a VM whose configuration version is newer than the destination reads
//   (a newer source host's) is refused at prepare, clearly, and nothing is staged there.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CONFIG_VERSION } from '../src/host/config-version.ts';
import { TestDaemon, waitFor, type CliResult } from './support/daemon.ts';
import { type CliTools } from './support/cli-tools.ts';
import { twoMigrationHosts, type TwoHosts } from './support/two-hosts.ts';

const LONG = process.env.VMHOST_LONG === '1';
/** The smallest memory the test guest boots in (measured: 64 MB does not, 96 MB does). */
const SMALL = '96MB';
type Job = { Id: string; Name: string; State: string; StatusDescription: string; VMName: string };
type Vm = { Id: string; Name: string; State: string };

describe('Move-VM: simultaneous moves, a dirtying guest, migration networks, config versions', () => {
  let a: TestDaemon;
  let b: TestDaemon;
  let ta: CliTools;
  let tb: CliTools;
  let bDest = '';
  let hosts: TwoHosts | undefined;
  const cliA = (...args: string[]): Promise<CliResult> => hosts!.cliA(...args);
  const okA = async (...args: string[]): Promise<string> => {
    const r = await cliA(...args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  /** The last match of `re` in a host's event log. */
  const lastEvent = async (d: TestDaemon, re: RegExp) => [...(await readFile(join(d.dataDir, 'events.jsonl'), 'utf8')).matchAll(re)].at(-1);

  before(async () => {
    hosts = await twoMigrationHosts();
    ({ a, b, ta, tb, bDest } = hosts);
  });
  after(() => hosts?.stop());

  const [MOVES, LIMIT] = [4, 2];
  test(`${MOVES} simultaneous moves with -MaximumVirtualMachineMigrations ${LIMIT}: ${LIMIT} run, ${MOVES - LIMIT} wait Queued, all run on B`, { timeout: 240_000 }, async () => {
    const t0 = Date.now();
    const names = Array.from({ length: MOVES }, (_, i) => `q${i + 1}`);
    await Promise.all(names.map(async (n) => {
      await ta.ok('New-VM', n, '-MemoryStartupBytes', SMALL);
      await ta.ok('Start-VM', n);
    }));
    // Moved while they boot: a guest mid-boot migrates like any other, and B's heartbeat proves it went on.
    await ta.ok('Set-VMHost', '-MaximumVirtualMachineMigrations', String(LIMIT));
    const started = JSON.parse(await okA('Move-VM', 'q*', '-DestinationHost', bDest, '-AsJob', '-Json')) as Job | Job[];
    const ids = (Array.isArray(started) ? started : [started]).map((j) => j.Id);
    assert.equal(ids.length, MOVES);
    // Sampled until every move ended: never more running than the limit; the first sample (the moves take seconds) has the rest queued.
    const samples: Array<{ running: number; queued: number }> = [];
    const final = await waitFor('every move to end', 200_000, async () => {
      const jobs = ((await a.api('GET', '/api/v1/jobs')).json as Job[]).filter((j) => ids.includes(j.Id));
      samples.push({ running: jobs.filter((j) => j.State === 'Running').length, queued: jobs.filter((j) => j.State === 'Queued').length });
      for (const j of jobs) if (j.State === 'Queued') assert.equal(j.StatusDescription, 'Queued');
      return jobs.every((j) => j.State !== 'Running' && j.State !== 'Queued') && jobs;
    });
    console.log(`# ${samples.length} samples of (running, queued): ${samples.map((s) => `${s.running}/${s.queued}`).join(' ')}`);
    assert.deepEqual(samples[0], { running: LIMIT, queued: MOVES - LIMIT }, 'at first the limit runs and the rest wait');
    assert.ok(samples.every((s) => s.running <= LIMIT), 'never more moves at once than the limit');
    assert.deepEqual(final.map((j) => j.State), names.map(() => 'Completed'), JSON.stringify(final.map((j) => [j.VMName, j.StatusDescription])));
    assert.deepEqual(((await a.api('GET', '/api/v1/vms')).json as Vm[]).map((v) => v.Name), [], 'A has none left');
    const onB = await tb.json<Vm[]>('Get-VM');
    assert.deepEqual(onB.map((v) => [v.Name, v.State]).sort(), names.map((n) => [n, 'Running']));
    await Promise.all(names.map((n) => tb.heartbeat(n)));
    console.log(`# ${MOVES} moves, limit ${LIMIT}: ${Date.now() - t0} ms from New-VM to every guest answering on B`);
    await Promise.all(names.map((n) => tb.ok('Remove-VM', n, '-Force')));
    await ta.ok('Set-VMHost', '-MaximumVirtualMachineMigrations', '2');
  });

  test('migration networks: Add-/Get-/Set-/Remove-VMMigrationNetwork kept across a restart; a move streams only on listed networks', { timeout: 240_000 }, async () => {
    await tb.ok('Set-VMHost', '-UseAnyNetworkForMigration', '$false');
    await tb.ok('Add-VMMigrationNetwork', '10.99.0.0/16', '-Priority', '5');
    await tb.ok('Add-VMMigrationNetwork', '-Subnet', 'FD00:99:0::/48');
    await tb.fails(/Subnet: '10\.99\.1\.0\/8' has host bits set: the subnet is 10\.0\.0\.0\/8/, 'Add-VMMigrationNetwork', '10.99.1.0/8');
    await tb.fails(/already listed/, 'Add-VMMigrationNetwork', '10.99.0.0/16');
    await tb.fails(/not a subnet/, 'Add-VMMigrationNetwork', 'example.com/24');
    await tb.fails(/No migration network 10\.1\.0\.0\/16/, 'Set-VMMigrationNetwork', '10.1.0.0/16', '-NewPriority', '1');
    await tb.ok('Set-VMMigrationNetwork', 'fd00:99::/48', '-NewPriority', '1');
    const listed = () => tb.json<Array<{ Subnet: string; Priority: number }>>('Get-VMMigrationNetwork');
    const want = [{ Subnet: 'fd00:99::/48', Priority: 1 }, { Subnet: '10.99.0.0/16', Priority: 5 }];
    assert.deepEqual(await listed(), want);
    assert.deepEqual(await tb.json('Get-VMMigrationNetwork', '-Priority', '5'), [want[1]]);
    await b.terminate();
    await b.launch();
    assert.deepEqual(await listed(), want, 'kept across a restart');
    assert.equal((await tb.json<Record<string, unknown>>('Get-VMHost')).UseAnyNetworkForMigration, false);

    await ta.ok('New-VM', 'n1', '-MemoryStartupBytes', SMALL);
    await ta.ok('Start-VM', 'n1');
    const refused = async (re: RegExp) => {
      const r = await cliA('Move-VM', 'n1', '-DestinationHost', bDest);
      assert.notEqual(r.code, 0, 'the move was refused');
      assert.match(r.stderr, re);
      assert.equal((await ta.json<Vm>('Get-VM', 'n1')).State, 'Running');
      assert.deepEqual((await b.api('GET', '/api/v1/vms')).json, [], 'nothing of n1 on B');
    };
    // B has no address on its networks (this machine's are loopback's): it cannot listen for the stream.
    await refused(/no address on its migration networks \(fd00:99::\/48, 10\.99\.0\.0\/16\)/);
    await tb.ok('Add-VMMigrationNetwork', '127.0.0.0/8', '-Priority', '2');
    // A sends only into its own networks, which do not hold B's stream address.
    await ta.ok('Set-VMHost', '-UseAnyNetworkForMigration', '$false');
    await ta.ok('Add-VMMigrationNetwork', '10.0.0.0/8');
    await refused(/127\.0\.0\.1 is on none of this host's migration networks \(10\.0\.0\.0\/8\)/);
    await ta.ok('Add-VMMigrationNetwork', '127.0.0.0/24');
    await okA('Move-VM', 'n1', '-DestinationHost', bDest);
    assert.equal((await tb.json<Vm>('Get-VM', 'n1')).State, 'Running');
    assert.match(await readFile(join(b.dataDir, 'events.jsonl'), 'utf8'), /Migration networks changed/);
    await tb.ok('Remove-VM', 'n1', '-Force');
    for (const n of ['fd00:99::/48', '10.99.0.0/16', '127.0.0.0/8']) await tb.ok('Remove-VMMigrationNetwork', n);
    for (const n of ['10.0.0.0/8', '127.0.0.0/24']) await ta.ok('Remove-VMMigrationNetwork', n);
    assert.deepEqual((await b.api('GET', '/api/v1/host/migration-networks')).json, []);
    await tb.fails(/No migration network/, 'Remove-VMMigrationNetwork', '127.0.0.0/8');
  });

  test('a VM whose config version is newer than the destination reads is refused at prepare; nothing is staged there', async () => {
    await ta.ok('New-VM', 'v1', '-MemoryStartupBytes', SMALL);
    const { Id } = await ta.json<Vm>('Get-VM', 'v1');
    // What a newer source host sends: the VM's config at a version this build does not know.
    const config = { ...JSON.parse(await readFile(join(a.dataDir, 'vms', Id, 'vm.json'), 'utf8')) as Record<string, unknown>, configVersion: CONFIG_VERSION + 1 };
    const ticket = (await b.api('POST', '/api/v1/migrations/tickets', { VMId: Id })).json as { Ticket: string };
    const res = await fetch(`${b.url}/api/v1/migrations`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-vmhost-migration-ticket': ticket.Ticket },
      body: JSON.stringify({ config, disks: {}, chs: {}, boot: 'Firmware', counters: {}, performance: 'TCPIP', sourceHost: 'newer-host' }),
    });
    const err = await res.json() as { code: string; message: string };
    assert.equal(res.status, 400, JSON.stringify(err));
    assert.equal(err.code, 'CONFIG_VERSION_UNSUPPORTED');
    assert.match(err.message, new RegExp(`moved VM 'v1' has configuration version ${CONFIG_VERSION + 1}; this host reads versions up to ${CONFIG_VERSION}: upgrade vmhost on this host first`));
    assert.deepEqual((await b.api('GET', '/api/v1/vms')).json, [], 'nothing registered on B');
    assert.deepEqual(await readdir(join(b.dataDir, 'vms')), [], 'nothing staged on B');
    assert.equal((await ta.json<Vm>('Get-VM', 'v1')).State, 'Off', 'v1 untouched on A');
    await ta.ok('Remove-VM', 'v1', '-Force');
  });

  const guests: Array<[string, number, number]> = [['dirty1', 256, 64], ...(LONG ? [['dirty2', 1024, 256] as [string, number, number]] : [])];
  for (const [vm, memMiB, dirtyMiB] of guests) {
    test(`a ${memMiB} MiB guest dirtying ${dirtyMiB} MiB at 50 MB/s moves and converges; the job shows the dirty rate and expected downtime`, { timeout: 300_000 }, async () => {
      await ta.ok('New-VM', vm, '-MemoryStartupBytes', `${memMiB}MB`);
      await ta.ok('Start-VM', vm);
      await ta.heartbeat(vm);
      const run = await ta.sh(vm, `setsid vmhost-memdirty ${dirtyMiB} 50 </dev/null >/dev/null 2>&1 & sleep 1; pidof vmhost-memdirty`);
      assert.match(run.out.trim(), /^\d+$/, `the dirtier runs: ${run.out}`);
      const dirtied = async (t: CliTools) => Number((await t.sh(vm, 'cat /tmp/memdirty')).out.trim());
      const before0 = await waitFor('the dirtier under way', 30_000, async () => { const n = await dirtied(ta); return n > 0 && n; });
      const job = JSON.parse(await okA('Move-VM', vm, '-DestinationHost', bDest, '-AsJob', '-Json')) as Job;
      const status = new Set<string>();
      const end = await waitFor('the move to end', 280_000, async () => {
        const j = (await a.api('GET', `/api/v1/jobs/${job.Id}`)).json as Job;
        status.add(j.StatusDescription);
        return j.State !== 'Running' && j.State !== 'Queued' && j;
      });
      assert.equal(end.State, 'Completed', JSON.stringify(end));
      const seen = [...status].filter((s) => /dirty \d+ MiB\/s/.test(s) && /expected downtime \d+ ms/.test(s));
      console.log(`# job progress while copying memory: ${seen.slice(-3).join(' | ') || [...status].join(' | ')}`);
      assert.ok(seen.length > 0, `the job showed a dirty rate and an expected downtime: ${[...status].join(' | ')}`);
      const moved = await tb.json<Vm>('Get-VM', vm);
      assert.equal(moved.State, 'Running');
      await tb.heartbeat(vm).catch(async (err: unknown) => {
        // What the guest said on its console, and how its host sees it, before the failure is reported.
        const serial = await readFile(join(b.dataDir, 'vms', moved.Id, 'serial.log'), 'utf8').catch(() => '(no serial log)');
        console.log(`# ${vm} on B: ${JSON.stringify((await b.api('GET', `/api/v1/vms/${vm}`)).json)}\n# serial tail: ${serial.slice(-1500)}`);
        throw err;
      });
      const onB = await dirtied(tb);
      // Its count is written once a second of guest time (a starved vCPU on a loaded machine makes that slow).
      const more = await waitFor(`the dirtier to go on on B (at ${onB} MiB)`, 90_000, async () => { const n = await dirtied(tb); return n > onB && n; });
      assert.ok(more > before0, 'the dirtier kept going on B');
      await new Promise((r) => setTimeout(r, 300)); // the event log is written behind the answer
      const out = await lastEvent(a, /VM moved to [^"]*QEMU: (\d+) ms, downtime (\d+) ms, (\d+) MiB/g);
      const inn = await lastEvent(b, /announced (\d+) ms after the source let go/g);
      assert.ok(out && inn, 'both hosts logged the move');
      console.log(`# ${memMiB} MiB guest dirtying ${dirtyMiB} MiB at 50 MB/s: QEMU ${out[1]} ms, ${out[3]} MiB sent, downtime ${out[2]} ms; `
        + `blackout ≈ ${Number(out[2]) + Number(inn[1])} ms (downtime + ${inn[1]} ms hand-over)`);
      await tb.ok('Remove-VM', vm, '-Force');
    });
  }
});
