// Serves one disk file from a child process for the crash tests (and by hand):
//   node --import tsx src/storage/test-serve.ts <disk> <socketDir> [exportName]
// Prints "ready <socketPath>" when listening; SIGTERM stops cleanly, SIGKILL is the crash.
import { BlockServer } from './block-server.ts';

const [path, socketDir, exportName] = process.argv.slice(2);
if (!path || !socketDir) {
  process.stderr.write('usage: test-serve.ts <disk> <socketDir> [exportName]\n');
  process.exit(2);
}
const server = new BlockServer({ socketDir });
const s = await server.serve(path, exportName ? { exportName } : {});
process.stdout.write(`ready ${s.socketPath}\n`);
process.on('SIGTERM', () => {
  void server.close().then(() => process.exit(0));
});
