// Time Synchronization (Hyper-V's integration service of that name): the host's clock is
// the guest's reference. The host pushes its time when the agent becomes ready (VM start,
// restore from saved state, daemon re-attach: each is a new agent connection) and after
// Resume-VM, since a paused or saved guest's clock stood still; in between, every heartbeat
// ping carries the guest's clock and a skew beyond 1 s is corrected.
//
// The decision is pure (clockSkew, syncDecision) so it is tested without a guest; TimeSync
// only wires it to an agent and is owned by VmRuntime.

/** One ping: host clock when it was sent and when the answer came, guest clock in the answer. */
export interface ClockSample {
  sentAtMs: number;
  receivedAtMs: number;
  guestTimeMs: number;
}

export type SyncTrigger = 'ready' | 'resume' | 'periodic';

/** Beyond this the periodic check corrects the guest (Hyper-V's guest service steps past ~1 s too). */
export const MAX_SKEW_MS = 1000;
/** A round trip longer than this says nothing reliable about the skew (a TCG guest under load). */
export const MAX_USEFUL_RTT_MS = 2000;

/**
 * Guest minus host, in ms. The guest read its clock somewhere in the round trip; taking
 * the midpoint bounds the error by half the round trip.
 */
export function clockSkew(s: ClockSample): { skewMs: number; rttMs: number } {
  const rttMs = Math.max(0, s.receivedAtMs - s.sentAtMs);
  return { skewMs: s.guestTimeMs - (s.sentAtMs + rttMs / 2), rttMs };
}

export type SyncDecision =
  | { push: false; why: 'disabled' | 'in-sync' | 'rtt-too-long' }
  | { push: true; skewMs: number | undefined };

/**
 * Whether to set the guest's clock now. Ready and resume always push (the guest's clock
 * cannot be trusted after either); the periodic check pushes only past MAX_SKEW_MS, and only
 * when the round trip was short enough for the skew to mean something.
 */
export function syncDecision(enabled: boolean, trigger: SyncTrigger, sample?: ClockSample): SyncDecision {
  if (!enabled) return { push: false, why: 'disabled' };
  const measured = sample ? clockSkew(sample) : undefined;
  if (trigger !== 'periodic') return { push: true, skewMs: measured?.skewMs };
  if (!measured) return { push: false, why: 'in-sync' };
  if (measured.rttMs > MAX_USEFUL_RTT_MS) return { push: false, why: 'rtt-too-long' };
  if (Math.abs(measured.skewMs) <= MAX_SKEW_MS) return { push: false, why: 'in-sync' };
  return { push: true, skewMs: measured.skewMs };
}

export interface TimeSyncAgent {
  setTime(timeMs: number): Promise<{ previousTimeMs: number; timeMs: number }>;
}

export interface TimeSyncCorrection {
  trigger: SyncTrigger;
  /** Guest minus host before the correction, as measured by the agent's own previous time. */
  skewMs: number;
}

/**
 * Pushes host time through `agent` when syncDecision says so. One push at a time; an agent
 * without settime (an older guest) is left alone until its next ready.
 */
export class TimeSync {
  private busy = false;
  private unsupported = false;
  /** Half the last useful round trip: how late a pushed time arrives in the guest. */
  private oneWayMs = 0;

  constructor(private readonly agent: TimeSyncAgent, private readonly enabled: () => boolean, private readonly onCorrected: (c: TimeSyncCorrection) => void) {}

  /** The agent (re)connected: it may be a new guest agent, so settime gets another chance. */
  ready(): Promise<void> {
    this.unsupported = false;
    return this.run('ready');
  }

  resumed(): Promise<void> {
    return this.run('resume');
  }

  /** A heartbeat ping's answer. */
  sample(s: ClockSample): Promise<void> {
    const { rttMs } = clockSkew(s);
    if (rttMs <= MAX_USEFUL_RTT_MS) this.oneWayMs = rttMs / 2;
    return this.run('periodic', s);
  }

  private async run(trigger: SyncTrigger, sample?: ClockSample): Promise<void> {
    if (this.busy || this.unsupported) return;
    const d = syncDecision(this.enabled(), trigger, sample);
    if (!d.push) return;
    this.busy = true;
    try {
      const sentAt = Date.now();
      const r = await this.agent.setTime(sentAt + this.oneWayMs);
      // The guest's clock just before the step, against the host time it was stepped to.
      const skewMs = r.previousTimeMs - (sentAt + this.oneWayMs);
      if (Math.abs(skewMs) > MAX_SKEW_MS) this.onCorrected({ trigger, skewMs });
    } catch (e) {
      if ((e as { context?: { agentCode?: unknown } }).context?.agentCode === 'UNKNOWN_OP') this.unsupported = true;
      // Otherwise (disconnected, timeout, paused guest): the next ping or ready tries again.
    } finally {
      this.busy = false;
    }
  }
}
