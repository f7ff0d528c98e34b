// Move-VM under load (issue 11's acceptance), two daemons on this machine, diskless test
// guests (nothing to share):
// - simultaneous moves held to the source's -MaximumVirtualMachineMigrations: as many run as
//   the limit allows, the rest wait Queued (Get-Job), never more run at once, and all end
//   Running on B. The default suite moves 2 with a limit of 1; VMHOST_LONG=1 the acceptance
//   form, 4 with a limit of 2.
// - a guest dirtying memory at ~50 MB/s (guest-agent/memdirty.c) moves and converges
//   (auto-converge, XBZRLE: migration-settings.ts); the job showed the dirty rate and the
//   expected downtime while it ran, the dirtier goes on counting on B, and the blackout
//   estimate (QEMU's downtime + the destination's hand-over, from both hosts' events) is
//   printed. test/move-vm.test.ts measures a blackout with a pinging peer. VMHOST_LONG=1 also
//   moves a 1 GiB guest dirtying 256 MiB.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDaemon, runCli, waitFor, type CliResult } from './support/daemon.ts';
import { cliTools, type CliTools } from './support/cli-tools.ts';

const LONG = process.env.VMHOST_LONG === '1';
/** The smallest memory the test guest boots in (measured: 64 MB does not, 96 MB does). */
const SMALL = '96MB';
type Job = { Id: string; Name: string; State: string; StatusDescription: string; VMName: string };
type Vm = { Id: string; Name: string; State: string };

describe('Move-VM under load: simultaneous moves, a guest dirtying memory', () => {
  let a: TestDaemon;
  let b: TestDaemon;
  let ta: CliTools;
  let tb: CliTools;
  let cliConfig = '';
  let bDest = '';
  const cliA = (...args: string[]): Promise<CliResult> => runCli(args, { VMHOST_URL: a.url, VMHOST_TOKEN: a.token, VMHOST_CONFIG_DIR: cliConfig });
  const okA = async (...args: string[]): Promise<string> => {
    const r = await cliA(...args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  /** The last match of `re` in a host's event log. */
  const lastEvent = async (d: TestDaemon, re: RegExp) => [...(await readFile(join(d.dataDir, 'events.jsonl'), 'utf8')).matchAll(re)].at(-1);

  before(async () => {
    [a, b] = await Promise.all([TestDaemon.start(), TestDaemon.start()]);
    ta = cliTools(a);
    tb = cliTools(b);
    cliConfig = await mkdtemp(join(tmpdir(), 'vmhost-cli-'));
    bDest = `127.0.0.1:${b.port}`;
    await Promise.all([ta.ok('Enable-VMMigration'), tb.ok('Enable-VMMigration')]);
    await okA('Set-VMHostCredential', '-ComputerName', bDest, '-Token', b.token);
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await rm(cliConfig, { recursive: true, force: true });
  });

  const [MOVES, LIMIT] = LONG ? [4, 2] : [2, 1];
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
      assert.equal((await tb.json<Vm>('Get-VM', vm)).State, 'Running');
      await tb.heartbeat(vm);
      const onB = await dirtied(tb);
      const more = await waitFor('the dirtier to go on on B', 30_000, async () => { const n = await dirtied(tb); return n > onB && n; });
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
