// Serves one disk file from a child process for the crash tests (and by hand):
//   node --import tsx src/storage/test-serve.ts <disk> <socketDir> [exportName] [--merge <child> <target>]
// Prints "ready <socketPath>" when listening; SIGTERM stops cleanly, SIGKILL is the crash.
// With --merge, a live merge of <child> into <target> starts when a line arrives on stdin; it prints
// "progress <done> <total>" per chunk and "merged <leaf>" at the end, and its commit writes
// <socketDir>/committed (the leaf to serve from then on: what a VM's config records).
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BlockServer } from './block-server.ts';

const args = process.argv.slice(2);
const m = args.indexOf('--merge');
const merge = m >= 0 ? { child: args[m + 1], target: args[m + 2] } : undefined;
const [path, socketDir, exportName] = m >= 0 ? args.slice(0, m) : args;
if (!path || !socketDir || (merge && (!merge.child || !merge.target))) {
  process.stderr.write('usage: test-serve.ts <disk> <socketDir> [exportName] [--merge <child> <target>]\n');
  process.exit(2);
}
const server = new BlockServer({ socketDir });
const s = await server.serve(path, exportName ? { exportName } : {});
process.stdout.write(`ready ${s.socketPath}\n`);
process.on('SIGTERM', () => {
  void server.close().then(() => process.exit(0));
});
if (merge) {
  await new Promise((r) => process.stdin.once('data', r));
  process.stdin.pause();
  const leaf = await server.merge(s.exportName, {
    child: merge.child!, target: merge.target!,
    progress: (done, total) => process.stdout.write(`progress ${done} ${total}\n`),
    commit: () => {
      const fd = openSync(join(socketDir, 'committed'), 'w');
      writeSync(fd, merge.target!);
      fsyncSync(fd);
      closeSync(fd);
      return Promise.resolve();
    },
  });
  process.stdout.write(`merged ${leaf}\n`);
}
