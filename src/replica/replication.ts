// Hyper-V Replica on one host: both roles at once, as in Hyper-V — the Replica server
// (replica-server.ts) for primaries that send here, and the primary relationships
// (primary.ts) of this host's VMs. It tells Get-VM each VM's ReplicationMode/State/Health and
// answers Get-VMReplication for both kinds; failover (failover.ts) moves a VM between them.
import type { Host } from '../host/index.ts';
import { ExtendedReplication } from './extended.ts';
import { PrimaryReplication, health, type ReplicationView } from './primary.ts';
import { ReplicaServer } from './replica-server.ts';
import { Failover } from './failover.ts';

export class Replication {
  readonly server: ReplicaServer;
  readonly primary: PrimaryReplication;
  readonly failover: Failover;
  /** This host's Replica VMs sent on to a third host. */
  readonly extended: ExtendedReplication;

  private constructor(private readonly host: Host, timerScale: number) {
    this.server = new ReplicaServer(host);
    this.primary = new PrimaryReplication(host, timerScale);
    this.failover = new Failover(host, this.server, this.primary);
    this.extended = new ExtendedReplication(host, timerScale, this.server);
  }

  static async open(host: Host, timerScale = 1): Promise<Replication> {
    const r = new Replication(host, timerScale);
    await r.server.open();
    await r.primary.open();
    await r.extended.open();
    host.setReplicationLook((id) => {
      const p = r.primary.has(id);
      if (p) return { mode: 'Primary', state: p.replicationState, health: health(p) };
      const rec = r.server.replicas.get(id);
      if (rec) return { mode: 'Replica', state: rec.failover?.state ?? 'Replicating', health: 'Normal' };
      return r.failover.testOf(id) ? { mode: 'TestReplica', state: 'Replicating', health: 'Normal' } : undefined;
    });
    host.setRecoveryPointsLook((id) => r.failover.recoveryPoints(id));
    return r;
  }

  async close(): Promise<void> {
    await this.primary.close();
    await this.extended.close();
    await this.server.close();
  }

  /** The relationship kind a VM's replication cmdlets act on: extended for a Replica VM of this host. */
  of(nameOrId: string): PrimaryReplication {
    return this.server.replicas.has(this.host.get(nameOrId).Id) ? this.extended : this.primary;
  }

  /** Measure-VMReplication: primaries' and extended relationships' statistics. */
  measure(nameOrId?: string): ReturnType<PrimaryReplication['measure']> {
    if (nameOrId !== undefined) return this.of(nameOrId).measure(nameOrId);
    return [...this.primary.measure(), ...this.extended.measure()];
  }

  /** Get-VMReplication: this host's primaries and replicas (of one VM when named). */
  list(nameOrId?: string): Array<ReplicationView | Record<string, unknown>> {
    const id = nameOrId === undefined ? undefined : this.host.get(nameOrId).Id;
    const primaries = [this.primary, this.extended].flatMap((p) => (id === undefined ? p.list() : p.has(id) ? p.list(id) : []));
    const replicas = [...this.server.replicas.values()].filter((x) => id === undefined || x.vmId === id).map((x) => ({
      VMName: x.vmName, VMId: x.vmId, ComputerName: this.host.facts.computerName, ReplicationMode: 'Replica', ReplicationState: x.failover?.state ?? 'Replicating',
      ReplicationHealth: 'Normal', PrimaryServerName: x.primaryServer, CurrentReplicaServerName: this.host.facts.computerName,
      LastReplicationTime: x.lastReplicationTime, RecoveryHistory: x.recoveryHistory, RecoveryPoints: x.points.length,
      ReplicaStorageLocation: x.dir, RecoveryPointTimes: [x.baseTime, ...x.points.map((p) => p.time)],
      RecoveryPointDetails: x.points.map((p) => ({ Seq: p.seq, Time: p.time, Consistency: p.consistency ?? 'CrashConsistent', ...(p.reason !== undefined ? { Reason: p.reason } : {}) })),
    }));
    return [...primaries, ...replicas];
  }
}
