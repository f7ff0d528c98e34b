// Restoring from a state file without `exec:` (QEMU runs with -sandbox spawn=deny): the argv
// says `-incoming file:<path>` (QEMU ≥ 8.1's own syntax; `,gzip` marks a gzip stream, ours
// alone), and QemuProcess.start, which spawns QEMU 7.2, opens the file itself and hands it
// over as fd 3 (`-incoming fd:3`) — for gzip, a pipe that the daemon feeds through zlib.
// Depends on nothing.

const PREFIX = 'file:';
const GZIP = ',gzip';

/** The `-incoming` value for a state file. */
export function fileIncomingUri(path: string, gzip: boolean): string {
  return `${PREFIX}${path}${gzip ? GZIP : ''}`;
}

export interface IncomingFile { path: string; gzip: boolean; argv: string[] }

/** The fd QEMU reads the state from. */
export const INCOMING_FD = 3;

/** When argv restores from a file: its path, and argv with `-incoming fd:3` instead. */
export function incomingFileOf(argv: string[]): IncomingFile | undefined {
  const i = argv.indexOf('-incoming');
  const v = i >= 0 ? argv[i + 1] : undefined;
  if (v === undefined || !v.startsWith(PREFIX)) return undefined;
  const gzip = v.endsWith(GZIP);
  const path = v.slice(PREFIX.length, gzip ? -GZIP.length : undefined);
  const out = [...argv];
  out[i + 1] = `fd:${INCOMING_FD}`;
  return { path, gzip, argv: out };
}
