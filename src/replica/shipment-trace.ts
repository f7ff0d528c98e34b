// Where a replication point's time goes (issue 13: continuous mode's RPO): each side of a point
// marks its phases — the primary's lock wait, point, connect, send, ack wait, commit; the
// Replica server's open, receive, flush, record, append, re-point, merges — and, when
// VMHOST_REPLICA_TRACE names a file, appends one JSON line per point: each phase's wall time and
// the process's CPU time (user + system) during it. The CPU is the whole daemon's, so it
// includes whatever else ran meanwhile (on the primary, the block server serving the guest).
// bench/replica.ts sets the variable and prints the breakdown.
import { appendFileSync } from 'node:fs';
import { cpuUsage } from 'node:process';

export type PhaseTimes = Record<string, { wallMs: number; cpuMs: number }>;

export class ShipmentTrace {
  readonly phases: PhaseTimes = {};
  private wall = performance.now();
  private cpu = cpuUsage();

  /** The phase that just ended (time since the previous mark). */
  mark(phase: string): void {
    const wall = performance.now(), cpu = cpuUsage();
    const p = (this.phases[phase] ??= { wallMs: 0, cpuMs: 0 });
    p.wallMs += wall - this.wall;
    p.cpuMs += (cpu.user - this.cpu.user + cpu.system - this.cpu.system) / 1000;
    this.wall = wall;
    this.cpu = cpu;
  }

  /** One line for the point, when tracing is on (a failure to write it never fails the point). */
  write(side: 'primary' | 'replica', facts: Record<string, unknown>): void {
    const file = process.env.VMHOST_REPLICA_TRACE;
    if (!file) return;
    try {
      appendFileSync(file, JSON.stringify({ side, at: new Date().toISOString(), ...facts, phases: this.phases }) + '\n');
    } catch {
      // tracing is a measurement aid
    }
  }
}
