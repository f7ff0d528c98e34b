// Heartbeat status as Hyper-V reports it (Msvm_HeartbeatComponent): derived from when
// the agent last answered. The caller pings (AgentClient.ping) on its own schedule and
// keeps the times; this only names the state.

export type HeartbeatStatus = 'NoContact' | 'Ok' | 'LostCommunication';

export interface HeartbeatTimes {
  /** When the VM (re)started: contact before that does not count. */
  startedAt: number;
  /** Last successful ping or ready event, if any. */
  lastAnswerAt?: number | undefined;
}

/**
 * NoContact: no answer since the VM started. Ok: answered within `graceMs`.
 * LostCommunication: answered once since start, but not within `graceMs`.
 */
export function heartbeatStatus(t: HeartbeatTimes, now: number, graceMs: number): HeartbeatStatus {
  if (t.lastAnswerAt === undefined || t.lastAnswerAt < t.startedAt) return 'NoContact';
  return now - t.lastAnswerAt <= graceMs ? 'Ok' : 'LostCommunication';
}
