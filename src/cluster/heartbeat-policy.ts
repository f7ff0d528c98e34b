// Heartbeat monitoring of a clustered VM (the "Virtual Machine" resource's CheckHeartbeat), pure:
// what the owner concludes from the VM's Heartbeat integration service seen at one moment. The
// owner (vm-monitor.ts) samples it every pass and acts on a failure with the VM resource's
// restart policy, as for a monitored service.
//
// - After a start (a new QEMU, or a reboot: QEMU's RESET, from inside or a reset) the guest has `graceMs` to reach OK.
//   A guest that never does — hung in its boot, its agent never connecting — is a failure, but
//   only for a role whose guest has answered before (`agentSeen`, kept in etcd for the role's
//   life, so it holds on whichever node starts it next): a VM without the agent never reports a
//   heartbeat and must not be restarted for that.
// - Once OK in this run, a heartbeat that stays lost (LostCommunication, or NoContact again) for
//   longer than `lostMs` is a failure.
// - Disabled (the integration service off) and Paused (the VM stopped by QEMU or an admin) are
//   no verdict and restart the lost-time count: a paused guest cannot answer.
import type { HeartbeatStatus } from '../host/index.ts';

export interface HeartbeatTiming {
  /** From a start to the first OK. Long enough for a Debian guest's boot under TCG on a loaded machine. */
  graceMs: number;
  /** From losing an OK heartbeat to the failure. */
  lostMs: number;
}

/**
 * Quiet, a Debian 12 guest reaches Heartbeat OK 33–45 s after its start under TCG (BENCHMARKS.md,
 * bench/boot.ts); the loaded 2-core machine stretches boots up to 4–5×. So 300 s. A lost heartbeat
 * is a guest that answered and stopped: 60 s on top of the ~6 s the runtime takes to call it lost.
 */
export const DEFAULT_HEARTBEAT_TIMING: HeartbeatTiming = { graceMs: 300_000, lostMs: 60_000 };

/** What the owner keeps per VM between samples; a new run (`run` changed) starts afresh. */
export interface HeartbeatTrack {
  /** The boot it describes: the QEMU's pid and its resets so far (Host.clusteredVms' `boot`). */
  run: string;
  /** When this node first saw the run (ms). */
  startedAt: number;
  okSeen: boolean;
  /** When the heartbeat was last seen leaving OK, while it has not come back. */
  lostSince?: number;
  /** The no-agent verdict was given for this run (it is said once). */
  noAgentSaid?: boolean;
}

export interface HeartbeatSample {
  now: number;
  run: string;
  status: HeartbeatStatus;
  /** The role's guest has answered a heartbeat before, on any node. */
  agentSeen: boolean;
}

export type HeartbeatVerdict =
  | { kind: 'none' }
  /** First OK of this run: `firstForRole` when the role had never seen its agent (the owner records it). */
  | { kind: 'ok'; firstForRole: boolean }
  /** The grace ran out with no OK and no agent ever seen: taken for a VM without the agent (said once a run). */
  | { kind: 'no-agent'; afterMs: number }
  | { kind: 'never'; afterMs: number }
  | { kind: 'lost'; afterMs: number };

export function judgeHeartbeat(prev: HeartbeatTrack | undefined, s: HeartbeatSample, timing: HeartbeatTiming): { track: HeartbeatTrack; verdict: HeartbeatVerdict } {
  const base: HeartbeatTrack = prev && prev.run === s.run ? prev : { run: s.run, startedAt: s.now, okSeen: false };
  if (s.status === 'OK') {
    return { track: { ...base, okSeen: true, lostSince: undefined }, verdict: base.okSeen && base.lostSince === undefined ? { kind: 'none' } : { kind: 'ok', firstForRole: !s.agentSeen } };
  }
  if (s.status === 'Disabled' || s.status === 'Paused') {
    // The grace starts again too: a guest paused through its boot has not had its time.
    return { track: { ...base, startedAt: base.okSeen ? base.startedAt : s.now, lostSince: undefined }, verdict: { kind: 'none' } };
  }
  if (!base.okSeen) {
    const waited = s.now - base.startedAt;
    if (waited <= timing.graceMs) return { track: base, verdict: { kind: 'none' } };
    if (!s.agentSeen) return { track: { ...base, noAgentSaid: true }, verdict: base.noAgentSaid ? { kind: 'none' } : { kind: 'no-agent', afterMs: waited } };
    return { track: base, verdict: { kind: 'never', afterMs: waited } };
  }
  const lostSince = base.lostSince ?? s.now;
  const track = { ...base, lostSince };
  return { track, verdict: s.now - lostSince > timing.lostMs ? { kind: 'lost', afterMs: s.now - lostSince } : { kind: 'none' } };
}
