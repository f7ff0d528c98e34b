// Continuous replication (vmhost extension, beyond Hyper-V's 30 s): -ReplicationFrequencySec 1.
// Kept as a frequency value rather than a named mode so Enable-VMReplication keeps Hyper-V's
// parameter set and Get-VMReplication's ReplicationFrequencySec says what it is. The primary
// ships the changes every CONTINUOUS_TICK_MS: each shipment is an ordinary cycle (the point-in-
// time pause, the `replica` tracker consumer's take, only the changed 64 KiB blocks), so what
// is written between shipments is whatever the guest flushed into the block server by then.
//
// A shipment keeps its fixed costs off its path (bench/replica.ts prints each phase's wall and CPU):
// the primary keeps one TLS connection open from shipment to shipment (the Replica server takes
// points on it until the primary hangs up), starts the next shipment as soon as one ends when a
// tick met it busy, deflates only while a compressed shipment gains 10 % or more (the guest's data
// may be random: then deflate is pure CPU; it is tried again every 25 shipments), and writes its
// relationship file at most every 2 s. The Replica server acknowledges a shipment once its
// differencing file is flushed and recorded as a point of its own (marked `fold`), and folds it
// into the point before only when the next shipment arrives, so the fold is off the acknowledged
// shipment's path and B is at rest after each ack.
//
// Bandwidth is bounded by coalescing: at most one shipment is in flight, and each 1 MiB piece is
// written only once the socket drained (sendFrame), so the primary's memory holds a piece and the
// socket's buffers, whatever the backlog; while a shipment runs, new writes only set bits in the
// tracker's bitmap (one bit per 64 KiB block, on disk: memory never grows with the backlog), and a
// block written many times goes once in the next shipment. When the link is slower than the write
// rate, shipments simply take longer and carry more (at most the blocks written since the last
// one) — the mode falls back to back-to-back cycles of whatever length the link allows — and once
// the newest acknowledged point is older than LAG_WARNING_MS, Health turns Warning (Normal again
// when it catches up; test/vm-replica-slow-link.test.ts). There is no bandwidth cap of our own:
// Hyper-V 2012 R2 has none for Replica either (it leaves that to QoS policies on the network).
// A shipment does not make a recovery point: the replica folds it into its newest point (received
// into its own differencing file first, then merged into that point, so a broken connection or a
// crash leaves the point whole, at worst with one more point), and a new recovery point is
// started every POINT_EVERY_MS (× the test timer scale).
export const CONTINUOUS = 1;
export const CONTINUOUS_TICK_MS = 200;
export const LAG_WARNING_MS = 5_000;
export const POINT_EVERY_MS = 30_000;

/** Whether this shipment appends to the newest recovery point (else it starts a new one). */
export function appendsToPoint(lastPointStart: string | null | undefined, now: Date, scale = 1): boolean {
  return lastPointStart !== null && lastPointStart !== undefined && now.getTime() - Date.parse(lastPointStart) < POINT_EVERY_MS * scale;
}

/** Whether a continuous relationship lags: its newest acknowledged point is older than LAG_WARNING_MS. */
export function lagging(lastReplication: string | null, now: Date): boolean {
  return lastReplication !== null && now.getTime() - Date.parse(lastReplication) > LAG_WARNING_MS;
}
