// Test support: the guest-side writer of the split-brain proof (issue 14). A busybox shell loop in
// the test guest appends records `counter node incarnation` to its data disk (the first SCSI disk:
// the clustered VM's VHDX in the shared folder), record n in 4 KiB block n, each written with
// conv=fsync so it has reached the node's block server — past its fencing stage — before the next
// one. A writer starting on a (re)booted guest finds the first empty block by binary search and
// goes on from there, so the counter continues across failovers. A refused write (STORAGE_FENCED,
// EIO in the guest) ends the writer.
//
// The proof read back: block n holds counter n for every n up to the end (strictly increasing, no
// gap), and the incarnations appear in the order the test started them, each in one contiguous
// run, each written by the node it was started on. Two writers at once — a partitioned owner still
// writing after the new owner started — would leave a run of the old incarnation after the new one
// began (or a gap, or a counter in the wrong block): a fork.
import assert from 'node:assert/strict';
import type { CliTools } from './cli-tools.ts';

const BLOCK = 4096;

// $1 node, $2 incarnation. Block size 4 KiB: the guest's page, so one record's write-back never
// carries a neighbour's stale copy. Binary search for the first empty block (the written ones are a prefix).
const WRITER = `echo $$ > /tmp/writer.pid; node=$1; inc=$2
until dev=$(ls /sys/bus/scsi/devices/0:0:0:0/block/ 2>/dev/null) && [ -n "$dev" ]; do sleep 0.1; done
dev=/dev/$dev; echo $dev > /tmp/writer.dev; lo=0; hi=$(($(blockdev --getsize64 $dev) / ${BLOCK}))
while [ $lo -lt $hi ]; do
  mid=$(((lo + hi) / 2))
  if [ -n "$(dd if=$dev bs=${BLOCK} skip=$mid count=1 iflag=direct 2>/dev/null | tr -d '\\000' | head -c 1)" ]; then lo=$((mid + 1)); else hi=$mid; fi
done
n=$lo; echo $n > /tmp/writer.first
while printf '%s %s %s\\n' $n $node $inc | dd of=$dev bs=${BLOCK} seek=$n count=1 conv=sync,fsync oflag=direct 2>/tmp/writer.err; do
  n=$((n + 1)); echo $n > /tmp/writer.next; sleep 0.1
done
echo stopped > /tmp/writer.stopped
`;

export interface Incarnation { node: string; inc: string }
export interface CounterRecord { counter: number; node: string; inc: string }

/** Start a writer in `vm` (through the agent of the node that runs it), tagged with the node's name and a fresh incarnation id. */
export async function startWriter(t: CliTools, vm: string, who: Incarnation): Promise<void> {
  const r = await t.sh(vm, `rm -f /tmp/writer.*\ncat > /tmp/writer.sh <<'EOF'\n${WRITER}EOF\nsetsid sh /tmp/writer.sh ${who.node} ${who.inc} </dev/null >/dev/null 2>&1 &\nuntil [ -f /tmp/writer.first ]; do sleep 0.1; done; cat /tmp/writer.first`);
  assert.equal(r.code, 0, r.out);
}

/** How many records this boot's writer has written so far; undefined when no writer was started in this boot (/tmp is the guest's RAM). */
export async function written(t: CliTools, vm: string): Promise<number | undefined> {
  const r = await t.sh(vm, '[ -f /tmp/writer.first ] || { echo none; exit 0; }; echo $(( $(cat /tmp/writer.next 2>/dev/null || cat /tmp/writer.first) - $(cat /tmp/writer.first) ))');
  return r.out.trim() === 'none' ? undefined : Number(r.out.trim());
}

/**
 * Stop the writer and read every record back (from the guest: it reads its own disk), and 64
 * blocks past the last one (where a second writer would have gone on). `running`: leave the
 * writer running and read only the records it had finished (a check along the way).
 */
export async function readRecords(t: CliTools, vm: string, running = false): Promise<CounterRecord[]> {
  if (!running) await t.sh(vm, 'kill $(cat /tmp/writer.pid); true');
  const r = await t.sh(vm, `n=$(cat /tmp/writer.next 2>/dev/null || echo 0); dd if=$(cat /tmp/writer.dev) bs=${BLOCK} count=$((n + ${running ? 0 : 64})) iflag=direct 2>/dev/null | tr -d '\\000'`);
  assert.equal(r.code, 0, r.out);
  return r.out.split('\n').filter((l) => l !== '').map((l) => {
    const [counter, node, inc] = l.split(' ');
    return { counter: Number(counter), node: node!, inc: inc! };
  });
}

/**
 * The counter never forked: see the header. An incarnation that wrote nothing (its guest turned
 * off before the first record: its node cut or isolated right after the start) leaves no run;
 * every other one must appear once, in order. Returns the records per incarnation.
 */
export function assertNoFork(records: readonly CounterRecord[], started: readonly Incarnation[]): Map<string, number> {
  records.forEach((r, i) => assert.equal(r.counter, i, `record ${i} holds counter ${r.counter}: a gap or a fork`));
  const runs: CounterRecord[] = [];
  for (const r of records) if (runs.at(-1)?.inc !== r.inc) runs.push(r);
  const per = new Map<string, number>();
  for (const r of records) per.set(r.inc, (per.get(r.inc) ?? 0) + 1);
  assert.deepEqual(runs.map((r) => `${r.inc}@${r.node}`), started.filter((s) => per.has(s.inc)).map((s) => `${s.inc}@${s.node}`),
    'each incarnation wrote one contiguous run, in the order they were started, on the node it was started on');
  return per;
}
