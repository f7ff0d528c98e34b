// Test support for Hyper-V Replica between two daemons: a test CA signing A's and B's
// certificates (each also naming 127.0.0.1, so either can be the Replica server the other
// connects to), both daemons with their cycle timer scaled, B a Replica server authorizing A
// (and, with `reverse`, A one authorizing B: reverse replication after a planned failover); and
// a guest writing a pattern to its data disk: record i — "seq=<i> t=<guest time>" then random
// bytes — as the i-th 64 KiB block, a few per second, so a copy of the disk shows which records
// it holds, and whether they are complete up to its last.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDaemon, freePort, waitFor } from './daemon.ts';
import { install, issue, makeCa, trust, type TestCert } from './replica-certs.ts';

export const A_NAME = 'primary-a.vmhost.test';
export const B_NAME = 'replica-b.vmhost.test';

export interface ReplicaPair {
  a: TestDaemon; b: TestDaemon;
  certA: TestCert; certB: TestCert;
  /** Each daemon's CertificateAuthenticationPort (A's listens only with `reverse`). */
  portA: number; portB: number;
  stop(): Promise<void>;
}

/** Two daemons, their certificates, B a Replica server for A (and A one for B with `reverse`). */
export async function startReplicaPair(o: { timerScale: number; reverse?: boolean; recoveryHistory?: number }): Promise<ReplicaPair> {
  const certs = await mkdtemp(join(tmpdir(), 'vmhost-replica-certs-'));
  const ca = await makeCa(certs, 'vmhost-test-ca');
  const [certA, certB] = await Promise.all([issue(certs, A_NAME, ca, ['127.0.0.1']), issue(certs, B_NAME, ca, ['127.0.0.1'])]);
  const scale = ['--replication-timer-scale', String(o.timerScale)];
  const [a, b] = await Promise.all([TestDaemon.start(undefined, scale), TestDaemon.start(undefined, scale)]);
  const [portA, portB] = [await freePort(), await freePort()];
  const serve = async (d: TestDaemon, port: number, allowed: string) => {
    await d.ok('Set-VMReplicationServer', '-ReplicationEnabled', '$true', '-AllowedAuthenticationType', 'Certificate', '-CertificateAuthenticationPort', String(port),
      '-DefaultStorageLocation', join(d.dataDir, 'any'), '-ReplicationAllowedFromAnyServer', '$false');
    await d.ok('New-VMReplicationAuthorizationEntry', '-AllowedPrimaryServer', allowed, '-ReplicaStorageLocation', join(d.dataDir, 'replicas'), '-TrustGroup', 'test');
  };
  for (const [d, c, n] of [[a, certA, 'primary'], [b, certB, 'server']] as const) {
    await install(d.dataDir, c, n);
    await trust(d.dataDir, ca);
  }
  await serve(b, portB, A_NAME);
  if (o.reverse) await serve(a, portA, B_NAME);
  return {
    a, b, certA, certB, portA, portB,
    stop: async () => {
      await Promise.all([a.stop(), b.stop()]);
      await rm(certs, { recursive: true, force: true });
    },
  };
}

/** The guest side of a VM: commands through the agent, its data disk's device. */
export class PatternGuest {
  private constructor(readonly d: TestDaemon, readonly vm: string, readonly dev: string) {}

  static async boot(d: TestDaemon, vm: string): Promise<PatternGuest> {
    // Polled through the API: a CLI call per poll costs a node start.
    await waitFor(`${vm} heartbeat`, 180_000, async () => ((await d.api('GET', `/api/v1/vms/${encodeURIComponent(vm)}`)).json as { Heartbeat?: string }).Heartbeat === 'OK');
    const dev = (await d.ok('Invoke-Command', '-VMName', vm, '-ScriptBlock', 'ls /sys/bus/scsi/devices/0:0:0:0/block/', '-TimeoutSeconds', '120')).trim();
    return new PatternGuest(d, vm, dev);
  }

  async run(script: string): Promise<string> {
    return (await this.d.ok('Invoke-Command', '-VMName', this.vm, '-ScriptBlock', script, '-TimeoutSeconds', '120')).trim();
  }

  /** Start writing records from `from` on, one about every 0.2 s, until `stopWriting`. */
  async startWriting(from: number): Promise<void> {
    const loop = `rm -f /tmp/stop /tmp/stopped; i=${from}; echo $i > /tmp/n; while [ ! -e /tmp/stop ]; do `
      + 'printf "seq=%08d t=%s\\n" $i $(date +%s) > /tmp/rec; head -c 65000 /dev/urandom >> /tmp/rec; '
      + `dd if=/tmp/rec of=/dev/${this.dev} bs=65536 count=1 seek=$i oflag=direct conv=notrunc,sync 2>/dev/null; `
      + 'i=$((i+1)); echo $i > /tmp/n; sleep 0.2; done; touch /tmp/stopped';
    // Returns once the writer is under way: the agent's shell ending first could take it along.
    await this.run(`rm -f /tmp/n; setsid sh -c '${loop}' >/dev/null 2>&1 & while [ ! -f /tmp/n ]; do sleep 0.1; done; echo started`);
  }

  /** Records written so far. */
  async written(): Promise<number> {
    return Number(await this.run('cat /tmp/n'));
  }

  /** Stop the writer; the number of records it wrote (0 … n-1), all on the disk (direct writes). */
  async stopWriting(): Promise<number> {
    return Number(await this.run('touch /tmp/stop; while [ ! -e /tmp/stopped ]; do sleep 0.1; done; cat /tmp/n'));
  }

  /**
   * The records on the disk: their guest times by sequence number, read from block 0 up to the
   * first block without one; `complete` when every block holds its own record and the next
   * blocks hold none (no hole before the end).
   */
  async records(): Promise<{ count: number; times: number[]; complete: boolean }> {
    const block = (b: string) => `$(dd if=/dev/${this.dev} bs=65536 skip=${b} count=1 iflag=direct 2>/dev/null | head -c 40 | head -n 1)`;
    const out = await this.run(`b=0; while :; do l="${block('$b')}"; case "$l" in seq=*) echo "$l";; *) break;; esac; b=$((b+1)); done; `
      + `for k in 1 2 3 4 5 6 7 8; do l="${block('$((b + k))')}"; case "$l" in seq=*) echo "after-hole $l";; esac; done`);
    const lines = out.split('\n').filter((l) => l.length > 0);
    const times: number[] = [];
    let complete = true;
    for (const l of lines) {
      const m = /^(after-hole )?seq=(\d+) t=(\d+)$/.exec(l);
      assert.ok(m, `a record line: ${l}`);
      if (m[1] || Number(m[2]) !== times.length) complete = false;
      if (!m[1]) times.push(Number(m[3]));
    }
    return { count: times.length, times, complete };
  }
}
