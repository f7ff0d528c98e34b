// The README's disk commands, read from the README itself and run in order on a fresh host
// with web1 running (as the README's "Using it" block leaves it): every one succeeds, Get-VHD
// and Test-VHD of the running VM's disk included. /srv becomes the test's data dir.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TestDaemon, waitFor } from './support/daemon.ts';

const ROOT = join(import.meta.dirname, '..');

/** The `bin/vmhost …` commands of the README block that starts with `heading`, in order. */
async function readmeCommands(heading: string): Promise<string[][]> {
  const text = await readFile(join(ROOT, 'README.md'), 'utf8');
  const start = text.indexOf(heading);
  assert.ok(start >= 0, `README has "${heading}"`);
  const lines = text.slice(start).split('\n').slice(1);
  const block = lines.slice(0, lines.findIndex((l, i) => i > 1 && !l.startsWith('    ')));
  return block
    .map((l) => l.trim().replace(/\s+#.*$/, ''))
    .flatMap((l) => l.split(/;\s*/))
    .filter((c) => c.startsWith('bin/vmhost '))
    .map((c) => c.split(/\s+/).slice(1));
}

let d: TestDaemon;
before(async () => { d = await TestDaemon.start(); });
after(async () => { await d?.stop(); });

test('the README\'s disk commands, in order, all succeed against a running VM', { timeout: 300_000 }, async () => {
  const cmds = await readmeCommands('Disks (our VHDX/VHD engines');
  assert.ok(cmds.length >= 8, `found ${cmds.length} commands`);
  const at = (a: string) => a.replace(/^\/srv\//, `${d.dataDir}/`).replace(/^(a\.vhdx|b\.vhd)$/, `${d.dataDir}/$1`);
  const run = async (args: string[]) => {
    const r = await d.cli(...args);
    assert.equal(r.code, 0, `bin/vmhost ${args.join(' ')} → exit ${r.code}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  };
  // What the README's earlier block set up: web1 running; and the other files the block names.
  await run(['New-VM', '-Name', 'web1', '-MemoryStartupBytes', '256MB', '-Generation', '2']);
  await run(['Start-VM', '-Name', 'web1']);
  await waitFor('web1 heartbeat', 120_000, async () => ((await d.api('GET', '/api/v1/vms/web1')).json as { Heartbeat: string }).Heartbeat === 'OK');
  for (const f of ['data.vhdx', 'a.vhdx']) await run(['New-VHD', '-Path', join(d.dataDir, f), '-SizeBytes', '1GB', '-Dynamic']);

  const out: Record<string, string> = {};
  for (const c of cmds) out[c.join(' ')] = await run(c.map(at));
  const get = Object.entries(out).find(([k]) => k.startsWith('Get-VHD /srv/web1.vhdx'))?.[1] ?? '';
  assert.match(get, /Attached\s*:\s*True/, 'Get-VHD of the running VM\'s disk says Attached');
  assert.match(get, /Size\s*:\s*42949672960/, 'and shows the online resize');
  assert.equal(out['Test-VHD /srv/web1.vhdx']?.trim(), 'True');
});
