// Two daemons on this machine as two Hyper-V hosts: for the Move-VM tests, migration enabled on
// both and a CLI config dir in which A's CLI holds B's credential (Set-VMHostCredential), as an
// admin moving VMs from A to B would have it; for the NIC teaming tests, hosts cabled to each
// other by UDP-tunnel network adapters.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDaemon, freeUdpPort, runCli, type CliResult } from './daemon.ts';
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

/**
 * Two daemons whose network adapters NIC1…NICn (vmhostd --net-adapter) are UDP tunnels, A's
 * NICk facing B's NICk: two hosts with n cables between them.
 */
export async function twoCabledHosts(n: number): Promise<Pick<TwoHosts, 'a' | 'b' | 'ta' | 'tb' | 'stop'>> {
  const ports = new Set<number>();
  while (ports.size < 2 * n) ports.add(await freeUdpPort());
  const p = [...ports];
  const flags = (side: 0 | 1) => Array.from({ length: n }, (_, k) => {
    const [mine, theirs] = side === 0 ? [p[2 * k]!, p[2 * k + 1]!] : [p[2 * k + 1]!, p[2 * k]!];
    return ['--net-adapter', `NIC${k + 1}=udp:127.0.0.1:${mine}->127.0.0.1:${theirs}`];
  }).flat();
  const [a, b] = await Promise.all([TestDaemon.start(undefined, flags(0)), TestDaemon.start(undefined, flags(1))]);
  return { a, b, ta: cliTools(a), tb: cliTools(b), stop: async () => { await Promise.all([a.stop(), b.stop()]); } };
}
