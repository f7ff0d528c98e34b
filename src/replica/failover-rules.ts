// Failover's rules, pure: which step is legal in which replication state, and which recovery
// point a failover stands on. The Replica VM's states follow Hyper-V's: Replicating (cycles
// arrive; a test failover may stand beside it), FailedOverWaitingCompletion (Start-VMFailover:
// the VM runs on the chosen point, later points kept so Stop-VMFailover can undo) and
// FailedOver (Complete-VMFailover: the chosen point is the VM's disk, the others dropped). The
// primary has one: PreparedForFailover (Start-VMFailover -Prepare of an off VM: its last
// changes sent, its cycles stopped). Every refusal says what is wrong and what to do instead.
import { VmhostError } from '../common/index.ts';

export type ReplicaState = 'Replicating' | 'FailedOverWaitingCompletion' | 'FailedOver';

export type ReplicaStep =
  | 'StartTest' // Start-VMFailover -AsTest
  | 'StopTest' // Stop-VMFailover while a test VM exists
  | 'Start' // Start-VMFailover
  | 'Stop' // Stop-VMFailover after a failover (undo)
  | 'Complete' // Complete-VMFailover
  | 'Reverse' // Set-VMReplication -Reverse
  | 'Receive' // a replication cycle arriving from the primary
  | 'StartVm'; // Start-VM of the Replica VM

export interface ReplicaSide {
  state: ReplicaState;
  /** A test VM ("<name> - Test") exists. */
  testing: boolean;
  /** The Replica VM's own state (Off, Running, …). */
  vmState: string;
}

function refuse(vm: string, message: string, state: string): VmhostError {
  return new VmhostError('REPLICATION_FAILOVER_STATE', `'${vm}': ${message}`, { vm, state });
}

/** Throws unless `step` is legal for the Replica VM `vm` in `s`. */
export function assertReplicaStep(vm: string, s: ReplicaSide, step: ReplicaStep): void {
  const fail = (m: string) => { throw refuse(vm, m, s.state); };
  const off = s.vmState === 'Off';
  switch (step) {
    case 'StartTest':
      if (s.state !== 'Replicating') fail(`a test failover needs a replicating Replica VM; it is ${s.state}`);
      if (s.testing) fail('a test failover is already running: Stop-VMFailover removes its test VM first');
      return;
    case 'StopTest':
      if (!s.testing) fail('no test failover is running');
      return;
    case 'Start':
      if (s.state !== 'Replicating') fail(`it is already ${s.state}`);
      if (s.testing) fail('a test failover is running: Stop-VMFailover removes its test VM first');
      if (!off) fail(`the Replica VM is ${s.vmState}; a failover starts from Off`);
      return;
    case 'Stop':
      if (s.state !== 'FailedOverWaitingCompletion') fail(s.state === 'FailedOver' ? 'the failover is complete: it cannot be undone' : 'no failover to undo (Start-VMFailover first)');
      if (!off) fail(`the VM is ${s.vmState}: turn it off before the failover is undone (its changes since the failover are dropped)`);
      return;
    case 'Complete':
      if (s.state !== 'FailedOverWaitingCompletion') fail(s.state === 'FailedOver' ? 'the failover is already complete' : 'there is no failover to complete (Start-VMFailover first)');
      return;
    case 'Reverse':
      if (s.state === 'Replicating') fail('reverse replication follows a failover (Start-VMFailover on this Replica server first)');
      if (!off) fail(`the VM is ${s.vmState}: reverse the replication before starting it (Set-VMReplication -Reverse, then Start-VM)`);
      return;
    case 'Receive':
      if (s.state !== 'Replicating') fail(`the Replica VM is ${s.state}: it takes no more cycles from its old primary (Set-VMReplication -Reverse replicates the other way)`);
      return;
    case 'StartVm':
      if (s.state === 'Replicating') fail('it is a Replica VM: it starts only after a failover (Start-VMFailover; -AsTest for a test copy)');
      return;
  }
}

export type PrimaryFailoverStep = 'Prepare' | 'Start' | 'Stop' | 'Complete';

/** The primary's side of the failover cmdlets: only -Prepare of an off, replicating VM (and Stop-VMFailover to cancel it). */
export function assertPrimaryStep(vm: string, state: string, vmState: string, step: PrimaryFailoverStep): void {
  const fail = (m: string) => { throw refuse(vm, m, state); };
  switch (step) {
    case 'Prepare':
      if (state !== 'Replicating') fail(`a planned failover needs replication Replicating, not ${state}`);
      if (vmState !== 'Off') fail(`the VM is ${vmState}: shut it down before Start-VMFailover -Prepare (the last changes are sent from its disks at rest)`);
      return;
    case 'Start':
      fail('it is a primary VM: Start-VMFailover runs on the Replica server (on the primary only -Prepare, for a planned failover)');
      return;
    case 'Stop':
      if (state !== 'PreparedForFailover') fail(`no planned failover is prepared (replication is ${state})`);
      return;
    case 'Complete':
      fail('it is a primary VM: Complete-VMFailover runs on the Replica server after Start-VMFailover');
      return;
  }
}

export interface PointRef { seq: number; time: string }

/**
 * The point -VMRecoverySnapshot names (its Name — the point's time — or its Id), or the newest
 * when none is named. `base` is the state the base disk holds (seq 0): the oldest point still
 * there once the points before it were merged.
 */
export function choosePoint<T extends PointRef>(base: PointRef, points: readonly T[], named: string | undefined, idOf: (p: PointRef) => string): PointRef | T {
  const all: Array<PointRef | T> = [base, ...[...points].sort((a, b) => a.seq - b.seq)];
  if (named === undefined) return all.at(-1)!;
  const hit = all.find((p) => p.time === named || idOf(p).toLowerCase() === named.toLowerCase());
  if (!hit) throw new VmhostError('NOT_FOUND', `no recovery point '${named}' (the points are ${all.map((p) => p.time).join(', ')})`, { snapshot: named });
  return hit;
}

/** Whether the recovery points' merges wait: a test VM's disks stand on the chain, so the chain's files stay as they are. */
export function mergesDeferred(s: Pick<ReplicaSide, 'testing' | 'state'>): boolean {
  return s.testing || s.state !== 'Replicating';
}

/**
 * Reverse replication's start, decided by the old primary: only the changed blocks when its
 * disks are still the state the new primary failed over to — its relationship was prepared
 * (the VM off, the last changes sent) and the point it sent last is the one failed over to —
 * else a resynchronization by block comparison (an unplanned failover, or the old VM ran since).
 */
export function reverseStart(old: { state: string; preparedSeq: number | null } | undefined, failedOverTo: number): 'delta' | 'resync' {
  return old?.state === 'PreparedForFailover' && old.preparedSeq === failedOverTo ? 'delta' : 'resync';
}
