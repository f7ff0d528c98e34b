// The CLI's Write-Progress through the real bin/vmhost: a long cmdlet run in a pseudo-terminal
// (util-linux `script`) draws a one-line bar in place and clears it at the end; run with pipes
// it prints plain progress lines every 10 % instead; either way on stderr, so -Json output stays
// parseable. Two kinds of long work: Convert-VHD (the CLI's own file work, no daemon) and
// Copy-VMFile (a daemon job, its progress from the event stream; every job the CLI waits for
// is shown the same way).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prng } from '../src/blockio/index.ts';
import { cliTools, type CliTools } from './support/cli-tools.ts';
import { ROOT, TestDaemon, runCli } from './support/daemon.ts';

const MiB = 1024 * 1024;
const VMHOST = join(ROOT, 'bin/vmhost');
// eslint-disable-next-line no-control-regex -- the bar's terminal sequences are what is checked
const CLEAR = /\r\x1b\[K/g;
const BAR = /\[(#*)(\.*)\] +(\d+)%/;

try {
  execFileSync('script', ['--version'], { stdio: 'ignore' });
} catch {
  if (process.env.CI === 'true') throw new Error('script (util-linux) is missing: the CLI progress test needs it (scripts/install-deps.sh)');
}

/** `bin/vmhost args` in a pseudo-terminal: everything it wrote (stdout and stderr share the terminal) and its exit code. */
function inTerminal(args: string[], env: Record<string, string>): Promise<{ code: number; out: string }> {
  const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  return new Promise((ok, fail) => {
    const p = spawn('script', ['-qec', [VMHOST, ...args].map(quote).join(' '), '/dev/null'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    p.stderr.on('data', (c: Buffer) => { out += c.toString(); });
    p.on('error', fail);
    p.on('close', (code) => ok({ code: code ?? -1, out }));
  });
}

/** The bar was drawn (more than once, ending at 100 %) and the line cleared after its last drawing; returns what follows the clear. */
function drawnAndCleared(out: string, activity: string): string {
  const draws = out.split('\r').map((s) => s.replace(/\x1b\[K/g, '')).filter((s) => s.startsWith(activity)); // eslint-disable-line no-control-regex
  assert.ok(draws.length >= 2, `the bar is redrawn as the work goes: ${JSON.stringify(out.slice(0, 400))}`);
  const percents = draws.map((s) => Number(BAR.exec(s)?.[3]));
  assert.deepEqual([...percents].sort((a, b) => a - b), percents, 'percent only grows');
  assert.equal(percents.at(-1), 100);
  const full = BAR.exec(draws.at(-1)!)!;
  assert.equal(full[2], '', 'a full bar at 100 %');
  assert.ok(!out.includes('\n' + activity), 'the bar never leaves a line of its own');
  const lastDraw = out.lastIndexOf(activity);
  const clears = [...out.matchAll(CLEAR)].map((m) => m.index);
  const clear = clears.find((i) => i > lastDraw);
  assert.ok(clear !== undefined, `the line is cleared after the last drawing: ${JSON.stringify(out.slice(-300))}`);
  return out.slice(clear + 4);
}

/** Plain lines on stderr: `<activity>: <n>% …`, one per 10 % step passed, growing, the last at 100 %. */
function plainLines(stderr: string, activity: string): number[] {
  assert.ok(!stderr.includes('\r') && !stderr.includes('\x1b'), 'no terminal control without a terminal');
  const lines = stderr.trimEnd().split('\n').filter((l) => l.startsWith(`${activity}: `));
  const steps = lines.map((l) => Number(/^.*?: (\d+)%/.exec(l)?.[1]));
  assert.ok(steps.length >= 2, `progress lines: ${stderr}`);
  for (let i = 1; i < steps.length; i++) assert.ok(Math.floor(steps[i]! / 10) > Math.floor(steps[i - 1]! / 10), `one line per 10 % step: ${steps.join(', ')}`);
  assert.equal(steps.at(-1), 100);
  return steps;
}

describe('Convert-VHD (the CLI\'s own work)', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vmhost-progress-'));
    const b = new Uint8Array(64 * MiB);
    const r = prng(7);
    for (let i = 0; i < b.length; i += 4096) b[i] = 1 + ((r() * 255) | 0);
    writeFileSync(join(dir, 'src.img'), b);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const env = {};

  test('in a terminal: a bar drawn in place, cleared at the end; -Json output follows intact', async () => {
    const r = await inTerminal(['Convert-VHD', join(dir, 'src.img'), join(dir, 't.vhdx'), '-BlockSizeBytes', '1MB', '-PassThru', '-Json'], env);
    assert.equal(r.code, 0, r.out);
    const rest = drawnAndCleared(r.out, "Convert-VHD 'src.img'");
    assert.equal((JSON.parse(rest) as { VhdFormat: string }).VhdFormat, 'VHDX');
  });

  test('without a terminal: plain lines every 10 % on stderr, stdout only the output', async () => {
    const r = await runCli(['Convert-VHD', join(dir, 'src.img'), join(dir, 'p.vhdx'), '-BlockSizeBytes', '1MB', '-PassThru', '-Json'], env);
    assert.equal(r.code, 0, r.stderr);
    plainLines(r.stderr, "Convert-VHD 'src.img'");
    assert.equal((JSON.parse(r.stdout) as { VhdFormat: string }).VhdFormat, 'VHDX');
  });

  test('VMHOST_PROGRESS_PREFERENCE=SilentlyContinue shows none', async () => {
    const r = await runCli(['Convert-VHD', join(dir, 'src.img'), join(dir, 's.vhdx')], { VMHOST_PROGRESS_PREFERENCE: 'SilentlyContinue' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
  });
});

describe('Copy-VMFile (a daemon job: its percent from the event stream)', () => {
  let d: TestDaemon;
  let t: CliTools;
  let dir = '';
  const env = () => ({ VMHOST_URL: d.url, VMHOST_TOKEN: d.token });

  before(async () => {
    d = await TestDaemon.start();
    t = cliTools(d);
    dir = mkdtempSync(join(tmpdir(), 'vmhost-progress-'));
    // 8 MiB: the guest acknowledges it in eight 1 MiB chunks, each a job update.
    writeFileSync(join(dir, 'payload.bin'), new Uint8Array(8 * MiB).fill(7));
    await t.ok('New-VM', 'pg', '-MemoryStartupBytes', '256MB');
    await t.ok('Enable-VMIntegrationService', '-VMName', 'pg', '-Name', 'Guest Service Interface');
    await t.ok('Start-VM', 'pg');
    await t.heartbeat('pg');
  });
  after(async () => {
    await d?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('without a terminal: plain lines every 10 %, from the job\'s own percent; -PassThru -Json stays on stdout', async () => {
    const r = await runCli(['Copy-VMFile', 'pg', '-SourcePath', join(dir, 'payload.bin'), '-DestinationPath', '/root/a.bin', '-FileSource', 'Host', '-PassThru', '-Json'], env());
    assert.equal(r.code, 0, r.stderr);
    plainLines(r.stderr, "Copy-VMFile 'pg'");
    assert.match(r.stderr, /Copied 8\.0 of 8\.0 MB/);
    assert.equal((JSON.parse(r.stdout) as { Size: number }[])[0]!.Size, 8 * MiB);
  });

  test('in a terminal: the bar drawn in place and cleared; the file is in the guest', async () => {
    const r = await inTerminal(['Copy-VMFile', 'pg', '-SourcePath', join(dir, 'payload.bin'), '-DestinationPath', '/root/b.bin', '-FileSource', 'Host'], env());
    assert.equal(r.code, 0, r.out);
    assert.equal(drawnAndCleared(r.out, "Copy-VMFile 'pg'").trim(), '');
    assert.equal((await t.sh('pg', 'wc -c < /root/b.bin')).out.trim(), String(8 * MiB));
  });
});
