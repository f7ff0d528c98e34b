// Serves one disk file from a child process for the crash tests (and by hand):
//   node --import tsx src/storage/test-serve.ts <disk> <socketDir> [exportName] [--merge <child> <target> | --mirror <target>]
// Prints "ready <socketPath>" when listening; SIGTERM stops cleanly, SIGKILL is the crash.
// With --merge, a live merge of <child> into <target> starts when a line arrives on stdin; it prints
// "progress <done> <total>" per chunk and "merged <leaf>" at the end, and its commit writes
// <socketDir>/committed (the leaf to serve from then on: what a VM's config records).
// With --mirror, a mirror ('all') of the disk to <target>, a new dynamic VHDX of its size, starts
// the same way; it prints "progress <done> <total>" per chunk, its commit writes <socketDir>/committed
// and prints "committed", and "mirrored <target>" follows the switch.
// With --track <file>, the export's changes are tracked in <file> (consumer "crash", registered
// and its first full take committed if new) before "ready".
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BlockServer } from './block-server.ts';
import { createMirrorFile } from './mirror-file.ts';

const args = process.argv.slice(2);
const ti = args.indexOf('--track');
const trackFile = ti >= 0 ? args.splice(ti, 2)[1] : undefined;
const m = args.indexOf('--merge');
const merge = m >= 0 ? { child: args[m + 1], target: args[m + 2] } : undefined;
const mi = args.indexOf('--mirror');
const mirrorTo = mi >= 0 ? args[mi + 1] : undefined;
const [path, socketDir, exportName] = m >= 0 ? args.slice(0, m) : mi >= 0 ? args.slice(0, mi) : args;
if (!path || !socketDir || (merge && (!merge.child || !merge.target)) || (mi >= 0 && !mirrorTo)) {
  process.stderr.write('usage: test-serve.ts <disk> <socketDir> [exportName] [--track <file>] [--merge <child> <target> | --mirror <target>]\n');
  process.exit(2);
}
const server = new BlockServer({ socketDir });
// Tracked from before the socket listens, as the daemon serves a VM's drive.
const s = await server.serve(path, { ...(exportName ? { exportName } : {}), ...(trackFile ? { changeTracking: trackFile } : {}) });
if (trackFile) {
  const t = server.tracker(s.exportName)!;
  if (!t.consumers().some((c) => c.name === 'crash')) {
    await t.addConsumer('crash');
    await t.take('crash');
    await t.commit('crash');
  }
}
process.stdout.write(`ready ${s.socketPath}\n`);
process.on('SIGTERM', () => {
  void server.close().then(() => process.exit(0));
});
function commitFile(content: string): Promise<void> {
  const fd = openSync(join(socketDir!, 'committed'), 'w');
  writeSync(fd, content);
  fsyncSync(fd);
  closeSync(fd);
  return Promise.resolve();
}
if (mirrorTo) {
  await new Promise((r) => process.stdin.once('data', r));
  process.stdin.pause();
  const mirror = await server.mirror(s.exportName, {
    target: await createMirrorFile(s.disk, mirrorTo),
    progress: (done, total) => process.stdout.write(`progress ${done} ${total}\n`),
    commit: async () => {
      await commitFile(mirrorTo);
      process.stdout.write('committed\n');
    },
  });
  await mirror.done;
  process.stdout.write(`mirrored ${mirrorTo}\n`);
}
if (merge) {
  await new Promise((r) => process.stdin.once('data', r));
  process.stdin.pause();
  const leaf = await server.merge(s.exportName, {
    child: merge.child!, target: merge.target!,
    progress: (done, total) => process.stdout.write(`progress ${done} ${total}\n`),
    commit: () => commitFile(merge.target!),
  });
  process.stdout.write(`merged ${leaf}\n`);
}
