// Metering stage: per-disk counters (operations by kind, bytes, normalized I/Os, latency)
// and a recent normalized-IOPS rate over a one-second sliding window. The storage half of
// resource metering; the host reads them through BlockServer.counters().
import type { IoKind, IoRequest, IoResult, Next, Stage } from './pipeline.ts';
import { normalizedIos } from './normalized.ts';

export interface DiskCounters {
  operations: Record<IoKind, number>;
  /** All operations, every kind. */
  totalOperations: number;
  bytesRead: number;
  bytesWritten: number;
  /** Normalized I/Os done (each 8 KiB or part of a read/write is one). */
  normalizedIos: number;
  /** Normalized IOPS over the last second. */
  normalizedIops: number;
  /** Mean latency of completed read/write operations (ms), 0 when none. */
  averageLatencyMs: number;
  /** The sum and count behind that mean (resource metering takes deltas of them). */
  latencyMsSum: number;
  latencyCount: number;
  /** Read/write operations with latency ≤ LATENCY_BUCKETS_MS[i] (cumulative, as a Prometheus histogram). */
  latencyBuckets: number[];
  /** Operations that completed with an error. */
  errors: number;
  /** Requests currently between the metering stage and the disk. */
  inFlight: number;
}

/** Latency histogram bounds (ms): 50 µs to 2.5 s. */
export const LATENCY_BUCKETS_MS: readonly number[] = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000, 2500];

const BUCKET_MS = 100;
const BUCKETS = 10;

export class MeteringStage implements Stage {
  readonly name = 'metering';
  private ops: Record<IoKind, number> = { read: 0, write: 0, flush: 0, trim: 0, 'write-zeroes': 0, 'block-status': 0 };
  private total = 0;
  private bytesRead = 0;
  private bytesWritten = 0;
  private nios = 0;
  private latencyMs = 0;
  private latencyCount = 0;
  /** Operations per latency bucket (not cumulative; the last one is above every bound). */
  private latencyHits = new Float64Array(LATENCY_BUCKETS_MS.length + 1);
  private errors = 0;
  private inFlight = 0;
  /** Normalized I/Os per 100 ms bucket, ring indexed by bucket number. */
  private ring = new Float64Array(BUCKETS);
  private ringAt = Math.floor(performance.now() / BUCKET_MS);

  handle(req: IoRequest, next: Next): Promise<IoResult> {
    const t0 = performance.now();
    this.inFlight++;
    return next(req).then(
      (r) => {
        this.inFlight--;
        this.complete(req, performance.now() - t0);
        return r;
      },
      (e: unknown) => {
        this.inFlight--;
        this.errors++;
        throw e;
      },
    );
  }

  /** Reads of zeros answered at once (Pipeline.readZeroNow) count like any other, with no latency. */
  passesNow(): boolean {
    return true;
  }

  passedNow(req: IoRequest): void {
    this.complete(req, 0);
  }

  private complete(req: IoRequest, latencyMs: number): void {
    this.ops[req.kind]++;
    this.total++;
    if (req.kind === 'read') this.bytesRead += req.length;
    else if (req.kind === 'write') this.bytesWritten += req.length;
    if (req.kind === 'read' || req.kind === 'write') {
      const n = normalizedIos(req);
      this.nios += n;
      this.advance();
      this.ring[this.ringAt % BUCKETS]! += n;
      this.latencyMs += latencyMs;
      this.latencyCount++;
      let b = 0;
      while (b < LATENCY_BUCKETS_MS.length && latencyMs > LATENCY_BUCKETS_MS[b]!) b++;
      this.latencyHits[b]!++;
    }
  }

  /** Move the ring to the current bucket, clearing the ones skipped. */
  private advance(): void {
    const now = Math.floor(performance.now() / BUCKET_MS);
    const steps = Math.min(BUCKETS, now - this.ringAt);
    for (let i = 1; i <= steps; i++) this.ring[(this.ringAt + i) % BUCKETS] = 0;
    this.ringAt = now;
  }

  counters(): DiskCounters {
    this.advance();
    let recent = 0;
    for (let i = 0; i < BUCKETS; i++) recent += this.ring[i]!;
    return {
      operations: { ...this.ops },
      totalOperations: this.total,
      bytesRead: this.bytesRead,
      bytesWritten: this.bytesWritten,
      normalizedIos: this.nios,
      normalizedIops: recent / ((BUCKETS * BUCKET_MS) / 1000),
      averageLatencyMs: this.latencyCount ? this.latencyMs / this.latencyCount : 0,
      latencyMsSum: this.latencyMs,
      latencyCount: this.latencyCount,
      latencyBuckets: LATENCY_BUCKETS_MS.map((_, i) => this.latencyHits.subarray(0, i + 1).reduce((a, n) => a + n, 0)),
      errors: this.errors,
      inFlight: this.inFlight,
    };
  }
}
