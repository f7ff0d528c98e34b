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
// A read that fails is asked again, never taken for an empty block: that would start the writer below
// records already written, and it would overwrite them with the same counters (kept in /tmp/writer.searcherr).
const WRITER = `echo $$ > /tmp/writer.pid; node=$1; inc=$2
until dev=$(ls /sys/bus/scsi/devices/0:0:0:0/block/ 2>/dev/null) && [ -n "$dev" ]; do sleep 0.1; done
dev=/dev/$dev; echo $dev > /tmp/writer.dev; lo=0; hi=$(($(blockdev --getsize64 $dev) / ${BLOCK}))
while [ $lo -lt $hi ]; do
  mid=$(((lo + hi) / 2))
  until dd if=$dev of=/tmp/writer.blk bs=${BLOCK} skip=$mid count=1 iflag=direct 2>/tmp/writer.ddlog; do cat /tmp/writer.ddlog >>/tmp/writer.searcherr; sleep 0.2; done
  if [ -n "$(tr -d '\\000' </tmp/writer.blk | head -c 1)" ]; then lo=$((mid + 1)); else hi=$mid; fi
done
n=$lo; echo $n > /tmp/writer.first
while printf '%s %s %s\\n' $n $node $inc | dd of=$dev bs=${BLOCK} seek=$n count=1 conv=sync,fsync oflag=direct 2>/tmp/writer.err; do
  n=$((n + 1)); echo $n > /tmp/writer.next; sleep 0.1
done
echo stopped > /tmp/writer.stopped
`;

export interface Incarnation { node: string; inc: string }
export interface CounterRecord { counter: number; node: string; inc: string }

/**
 * Start a writer in `vm` (through the agent of the node that runs it), tagged with the node's name and a fresh incarnation id.
 * Returns its first block, and what its search's failed reads said (empty: none failed).
 */
export async function startWriter(t: CliTools, vm: string, who: Incarnation): Promise<{ first: number; readErrors: string }> {
  const r = await t.sh(vm, `rm -f /tmp/writer.*\ncat > /tmp/writer.sh <<'EOF'\n${WRITER}EOF\nsetsid sh /tmp/writer.sh ${who.node} ${who.inc} </dev/null >/dev/null 2>&1 &\nuntil [ -f /tmp/writer.first ]; do sleep 0.1; done; cat /tmp/writer.first /tmp/writer.searcherr 2>/dev/null`);
  assert.equal(r.code, 0, r.out);
  const [first, ...errors] = r.out.split('\n');
  return { first: Number(first), readErrors: errors.join('\n').trim() };
}

/** A writer's first block and the block after its last record (first = next = -1 while it looks for its first block). */
export interface WriterState { first: number; next: number }

/**
 * Where this boot's writer is; undefined when no writer was started in this boot (/tmp is the guest's RAM). A writer still
 * looking for its first block is there too: a start whose answer was lost is not started twice.
 */
export async function written(t: CliTools, vm: string): Promise<WriterState | undefined> {
  const r = await t.sh(vm, '[ -f /tmp/writer.pid ] || { echo none; exit 0; }; f=$(cat /tmp/writer.first 2>/dev/null || echo -1); echo $f $(cat /tmp/writer.next 2>/dev/null || echo $f)');
  if (r.out.trim() === 'none') return undefined;
  const [first, next] = r.out.trim().split(' ').map(Number);
  assert.ok(Number.isInteger(first) && Number.isInteger(next), `${vm}: writer state ${JSON.stringify(r.out)}`);
  return { first: first!, next: next! };
}

/** A record as the writer prints it; anything else in a read-back is a finding, never skipped. */
const RECORD = /^(\d+) (\S+) (\S+)$/;
/** The read-back's exit code when this boot has no writer (no device, no count to read by). */
const NO_WRITER = 3;

/**
 * The same blocks read outside the guest (the VHDX file itself, the VM stopped): `count` blocks from 0, raw.
 * Given by the test, which knows where the file is and how to stop its role.
 */
export type HostRead = (count: number) => Promise<Buffer>;

/**
 * Stop the writer and read every record back (from the guest: it reads its own disk), and 64
 * blocks past the last one (where a second writer would have gone on). `running`: leave the
 * writer running and read only the records it had finished (a check along the way).
 *
 * The read-back proves itself: the guest's stdout holds records only (stderr apart, and it must be
 * empty), and a line that is not a record fails with its bytes, the guest's writer state, a second
 * read in the guest and — through `host` — the blocks as the VHDX file holds them, so one failure
 * tells a damaged disk from a misread. undefined: this boot of the guest has no writer (restarted since the caller saw one).
 */
export async function readRecords(t: CliTools, vm: string, running = false, host?: HostRead): Promise<CounterRecord[] | undefined> {
  if (!running) await t.sh(vm, 'kill $(cat /tmp/writer.pid); true');
  // No writer in this boot means no device or count to read by: say so instead of reading nothing.
  const read = (): ReturnType<CliTools['exec']> => t.exec(vm, `dev=$(cat /tmp/writer.dev) && n=$(cat /tmp/writer.next 2>/dev/null || cat /tmp/writer.first) || exit ${NO_WRITER}
dd if=$dev bs=${BLOCK} count=$((n + ${running ? 0 : 64})) iflag=direct 2>/dev/null | tr -d '\\000'`);
  const r = await read();
  if (r.code === NO_WRITER && r.stdout.length === 0) return undefined;
  const lines = r.stdout.toString('latin1').split('\n').filter((l) => l !== '');
  const bad = lines.findIndex((l) => !RECORD.test(l));
  if (r.code !== 0 || r.stderr.length > 0 || bad >= 0) {
    assert.fail(`${vm}: read-back exit ${r.code}, stderr ${JSON.stringify(r.stderr.toString('latin1'))}; ${lines.length} lines, `
      + `${bad < 0 ? 'every one a record' : `line ${bad} is not a record`}\n${await explain(t, vm, r.stdout, lines, bad, read, host)}`);
  }
  return lines.map((l) => {
    const [, counter, node, inc] = RECORD.exec(l)!;
    return { counter: Number(counter), node: node!, inc: inc! };
  });
}

/** The evidence for a read-back that did not parse: the guest's bytes around the line, its writer's state, a second read, the host's view. */
async function explain(t: CliTools, vm: string, stdout: Buffer, lines: readonly string[], bad: number, read: () => ReturnType<CliTools['exec']>, host: HostRead | undefined): Promise<string> {
  const out: string[] = [];
  // The offending line's offset in stdout (the first line that is not a record), and 128 bytes around it.
  const at = bad < 0 ? 0 : Math.max(0, stdout.indexOf(Buffer.from(lines[bad]!, 'latin1')));
  out.push(`guest stdout: ${stdout.length} bytes; bytes ${Math.max(0, at - 64)}.. (hex): ${stdout.subarray(Math.max(0, at - 64), at + 64).toString('hex')}`);
  const state = await t.sh(vm, 'cat /proc/uptime; for f in /tmp/writer.*; do echo "$f: $(head -c 200 $f)"; done').catch((e: unknown) => ({ code: -1, out: String(e) }));
  out.push(`guest state: ${JSON.stringify(state.out)}`);
  const again = await read().catch(() => undefined);
  out.push(`second guest read: ${again ? `exit ${again.code}, ${again.stdout.equals(stdout) ? 'the same stdout' : `stdout differs (${again.stdout.length} bytes)`}, stderr ${JSON.stringify(again.stderr.toString('latin1'))}` : 'failed'}`);
  if (host) {
    // Each block as the file holds it: a record `n …` in block n, zeros after the last one.
    const raw = await host(lines.length + 64).catch((e: unknown) => e);
    if (!Buffer.isBuffer(raw)) out.push(`host read failed: ${String(raw)}`);
    else {
      const blocks: string[] = [];
      let records = 0;
      for (let b = 0; b * BLOCK < raw.length; b++) {
        const block = raw.subarray(b * BLOCK, (b + 1) * BLOCK);
        const text = block.toString('latin1').replace(/\0+$/, '');
        if (text === '') continue;
        const m = /^(\d+) \S+ \S+\n$/.exec(text);
        if (m && Number(m[1]) === b) { records++; continue; }
        if (blocks.length < 8) blocks.push(`block ${b}: ${block.subarray(0, 96).toString('hex')}${block.subarray(96).some((x) => x !== 0) ? ' (more non-zero bytes after 96)' : ''}`);
      }
      out.push(`host (the VHDX file, VM stopped): ${raw.length / BLOCK} blocks, ${records} hold their own record; ${blocks.length === 0 ? 'no other non-empty block' : blocks.join('; ')}`);
    }
  }
  return out.join('\n');
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
