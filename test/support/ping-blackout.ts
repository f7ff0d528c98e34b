// The blackout a guest pinging a moving guest saw, from busybox ping's output (`ping -i
// INTERVAL`): each reply is placed at its request's nominal send time (seq × interval) plus its
// round trip, and the longest wait between two replies is the blackout. Counting lost sequence
// numbers alone misses the requests the moved guest answered late: QEMU holds the frames that
// reach a stopped NIC and delivers them when the guest runs again (their time= is long).
// Shared by test/move-vm.test.ts and bench/live-migration.ts.

export interface PingBlackout {
  replies: number;
  blackoutMs: number;
  /** The replies' sequence numbers, in order. */
  seqs: number[];
}

export function pingBlackout(log: string, intervalMs: number): PingBlackout {
  const replies = [...log.matchAll(/seq=(\d+) ttl=\d+ time=([\d.]+) ms/g)].map((m) => ({ seq: Number(m[1]), rtt: Number(m[2]) }));
  replies.sort((x, y) => x.seq - y.seq);
  const arrivals = replies.map((r) => r.seq * intervalMs + r.rtt).sort((x, y) => x - y);
  let blackoutMs = 0;
  for (let i = 1; i < arrivals.length; i++) blackoutMs = Math.max(blackoutMs, arrivals[i]! - arrivals[i - 1]!);
  return { replies: replies.length, blackoutMs: Math.round(blackoutMs), seqs: replies.map((r) => r.seq) };
}
