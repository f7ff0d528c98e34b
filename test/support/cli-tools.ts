// Assertions over one TestDaemon's CLI and guests, for tests that drive several hosts at once:
// ok/fails/json run cmdlets (fails also checks for a one-line error), sh runs a shell command
// in a guest through the invoke API, heartbeat waits for the guest agent.
import assert from 'node:assert/strict';
import { waitFor, type TestDaemon } from './daemon.ts';

export interface CliTools {
  ok(...args: string[]): Promise<string>;
  fails(re: RegExp, ...args: string[]): Promise<void>;
  json<T>(...args: string[]): Promise<T>;
  sh(vm: string, script: string): Promise<{ code: number; out: string }>;
  /** sh with the guest's stdout and stderr apart, as bytes (a reader that must tell a record from an error message). */
  exec(vm: string, script: string): Promise<{ code: number; stdout: Buffer; stderr: Buffer }>;
  heartbeat(vm: string): Promise<void>;
}

export function cliTools(d: TestDaemon): CliTools {
  const ok = async (...args: string[]): Promise<string> => {
    const r = await d.cli(...args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const exec = async (vm: string, script: string): Promise<{ code: number; stdout: Buffer; stderr: Buffer }> => {
    const r = await d.api('POST', `/api/v1/vms/${vm}/invoke`, { ScriptBlock: script, TimeoutSeconds: 30 });
    assert.equal(r.status, 200, r.text);
    const j = r.json as { StdOut: string; StdErr: string; ExitCode: number };
    return { code: j.ExitCode, stdout: Buffer.from(j.StdOut, 'base64'), stderr: Buffer.from(j.StdErr, 'base64') };
  };
  return {
    ok,
    exec,
    async fails(re, ...args) {
      const r = await d.cli(...args);
      assert.notEqual(r.code, 0, `${args.join(' ')} should fail`);
      const msg = r.stderr.trim();
      assert.match(msg, re);
      assert.equal(msg.split('\n').length, 1, `one-line error: ${msg}`);
    },
    async json<T>(...args: string[]): Promise<T> { return JSON.parse(await ok(...args, '-Json')) as T; },
    async sh(vm, script) {
      const r = await exec(vm, script);
      return { code: r.code, out: r.stdout.toString() + r.stderr.toString() };
    },
    async heartbeat(vm) {
      await waitFor(`${vm} heartbeat`, 90_000, async () => ((await d.api('GET', `/api/v1/vms/${vm}`)).json as { Heartbeat: string }).Heartbeat === 'OK');
    },
  };
}

/**
 * Guests on several hosts at once: each is created with one adapter on `switchName`, started,
 * awaited (heartbeat) and given its address (`ip` with /24) on eth0. Returns how long it took.
 */
export async function bootGuestsOnSwitch(guests: readonly (readonly [CliTools, string, string])[], switchName: string): Promise<number> {
  const t0 = Date.now();
  await Promise.all(guests.map(async ([t, vm]) => {
    await t.ok('New-VM', vm, '-MemoryStartupBytes', '256MB', '-SwitchName', switchName);
    await t.ok('Start-VM', vm);
  }));
  await Promise.all(guests.map(([t, vm]) => t.heartbeat(vm)));
  const took = Date.now() - t0;
  for (const [t, vm, ip] of guests) assert.equal((await t.sh(vm, `ip addr add ${ip}/24 dev eth0 && ip link set eth0 up`)).code, 0);
  return took;
}
