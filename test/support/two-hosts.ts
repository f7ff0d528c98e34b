// Two daemons on this machine as two Hyper-V hosts for the Move-VM tests: migration enabled on
// both, and a CLI config dir in which A's CLI holds B's credential (Set-VMHostCredential), as an
// admin moving VMs from A to B would have it.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDaemon, runCli, type CliResult } from './daemon.ts';
import { cliTools, type CliTools } from './cli-tools.ts';

export interface TwoHosts {
  a: TestDaemon;
  b: TestDaemon;
  ta: CliTools;
  tb: CliTools;
  /** VMHOST_CONFIG_DIR of A's CLI: it holds B's credential. */
  cliConfig: string;
  /** B as Move-VM's -DestinationHost. */
  bDest: string;
  /** The CLI as an admin of A whose credential store holds B's. */
  cliA(...args: string[]): Promise<CliResult>;
  stop(): Promise<void>;
}

export async function twoMigrationHosts(): Promise<TwoHosts> {
  const [a, b] = await Promise.all([TestDaemon.start(), TestDaemon.start()]);
  const cliConfig = await mkdtemp(join(tmpdir(), 'vmhost-cli-'));
  const ta = cliTools(a), tb = cliTools(b);
  const bDest = `127.0.0.1:${b.port}`;
  const cliA = (...args: string[]): Promise<CliResult> => runCli(args, { VMHOST_URL: a.url, VMHOST_TOKEN: a.token, VMHOST_CONFIG_DIR: cliConfig });
  await Promise.all([ta.ok('Enable-VMMigration'), tb.ok('Enable-VMMigration')]);
  const r = await cliA('Set-VMHostCredential', '-ComputerName', bDest, '-Token', b.token);
  assert.equal(r.code, 0, r.stderr);
  return {
    a, b, ta, tb, cliConfig, bDest, cliA,
    stop: async () => {
      await Promise.all([a.stop(), b.stop()]);
      await rm(cliConfig, { recursive: true, force: true });
    },
  };
}
