// Test support: N real etcd members (Debian's etcd 3.4) forming one etcd cluster on free
// loopback ports, each in a temp data dir, as each vmhostd node of a test cluster has its own
// member (ARCHITECTURE.md, "Clustering"). `stop()` kills them and removes the dirs; `kill(i)`
// takes one member down (a node's machine dying takes its member with it).
import { spawn, type ChildProcess } from 'node:child_process';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from './daemon.ts';
import { rejoinMember } from '../../src/cluster/member-rejoin.ts';

export const ETCD = '/usr/bin/etcd';

export interface EtcdMember { name: string; clientUrl: string; peerUrl: string; dir: string; args: string[]; proc: ChildProcess; log: string }

/** (Re)start a member's process with its arguments (on a data dir it has, etcd ignores the initial-cluster flags). */
function spawnMember(member: Omit<EtcdMember, 'proc'> & { proc?: ChildProcess }): EtcdMember {
  const proc = spawn(ETCD, member.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const keep = (b: Buffer): void => { member.log = (member.log + b.toString()).slice(-20_000); };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  member.proc = proc;
  return member as EtcdMember;
}

export class EtcdCluster {
  private constructor(readonly members: EtcdMember[]) {}

  /** Every member's client URL, as `--cluster-etcd-endpoints` takes them. */
  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  /** Member i's client URL first: the node that runs member i talks to it first. */
  endpointsFor(i: number): string {
    return [this.members[i]!.clientUrl, ...this.endpoints.filter((_, k) => k !== i)].join(',');
  }

  /** `args`: more etcd flags for every member (e.g. a partition test's shorter election timeout). */
  static async start(n: number, args: readonly string[] = []): Promise<EtcdCluster> {
    // A missing etcd is a failure with its fix, never a skip.
    await access(ETCD).catch(() => { throw new Error(`${ETCD} is missing: scripts/install-deps.sh installs etcd-server`); });
    // A port found free may be taken by a test running beside this one before etcd binds it (seen
    // in CI): the whole cluster starts again on new ports, since every member names all the peers.
    for (let attempt = 1; ; attempt++) {
      try {
        return await EtcdCluster.startOnce(n, args);
      } catch (e) {
        if (attempt >= 3 || !/address already in use/.test(String(e))) throw e;
      }
    }
  }

  private static async startOnce(n: number, extra: readonly string[]): Promise<EtcdCluster> {
    const plan = [];
    for (let i = 0; i < n; i++) {
      plan.push({ name: `etcd${i + 1}`, clientUrl: `http://127.0.0.1:${await freePort()}`, peerUrl: `http://127.0.0.1:${await freePort()}`, dir: await mkdtemp(join(tmpdir(), 'vmhost-etcd-')) });
    }
    const initial = plan.map((m) => `${m.name}=${m.peerUrl}`).join(',');
    const token = `vmhost-test-${process.pid}-${Date.now()}`;
    const members = plan.map((m) => {
      // Heartbeat 100 ms / election 1 s (etcd's defaults, unless `extra` says otherwise): a test cluster elects a leader in about a second.
      const args = [
        '--name', m.name, '--data-dir', join(m.dir, 'data'),
        '--listen-client-urls', m.clientUrl, '--advertise-client-urls', m.clientUrl,
        '--listen-peer-urls', m.peerUrl, '--initial-advertise-peer-urls', m.peerUrl,
        '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', token, ...extra,
      ];
      return spawnMember({ ...m, args, log: '' });
    });
    const cluster = new EtcdCluster(members);
    try {
      // Ready = a write through every member succeeds (a leader exists and each member reaches it).
      for (const m of members) {
        await waitFor(`etcd member ${m.name} at ${m.clientUrl}`, 30_000, async () => {
          if (m.proc.exitCode !== null) throw new Error(`etcd ${m.name} exited: ${m.log.slice(-2000)}`);
          const r = await fetch(`${m.clientUrl}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: Buffer.from('ready').toString('base64'), value: '' }), signal: AbortSignal.timeout(1000) });
          return r.ok;
        });
      }
    } catch (e) {
      await cluster.stop();
      throw e;
    }
    return cluster;
  }

  /** SIGKILL member i (its data dir stays until stop()). */
  async kill(i: number): Promise<void> {
    const p = this.members[i]!.proc;
    if (p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  }

  /** Start a killed member i again on its data dir (a node's machine coming back). */
  restart(i: number): void {
    spawnMember(this.members[i]!);
  }

  /**
   * Member i, removed from etcd by its node's clean leave, started again the way a node's etcd
   * service does it (packaging/systemd/etcd.service.d: bin/vmhost-etcd-rejoin, src/cluster/member-rejoin.ts):
   * it joins as a new member, on an empty data dir (the old one moved aside), with the members as they are now.
   */
  async rejoin(i: number): Promise<void> {
    const m = this.members[i]!;
    await this.kill(i);
    const r = await rejoinMember({ name: m.name, peerUrl: m.peerUrl, dataDir: join(m.dir, 'data'), endpoints: this.endpoints.filter((_, k) => k !== i) });
    if (r.plan.action !== 'rejoin') throw new Error(`etcd member ${m.name} was expected to rejoin: ${r.said}`);
    const at = (flag: string): number => m.args.indexOf(flag) + 1;
    m.args[at('--initial-cluster')] = r.env.ETCD_INITIAL_CLUSTER!;
    m.args[at('--initial-cluster-state')] = r.env.ETCD_INITIAL_CLUSTER_STATE!;
    spawnMember(m);
  }

  /**
   * SIGSTOP member i: frozen, it answers nobody and sends nothing, so its peers see exactly what
   * dropped packets give them (open connections that go silent); `resume(i)` (SIGCONT) lets it go on.
   */
  pause(i: number): void {
    this.members[i]!.proc.kill('SIGSTOP');
  }

  resume(i: number): void {
    this.members[i]!.proc.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    for (let i = 0; i < this.members.length; i++) await this.kill(i);
    for (const m of this.members) await rm(m.dir, { recursive: true, force: true });
  }
}
