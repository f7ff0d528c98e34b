// Test support: capturing on the loopback interface with a capture filter, for tests that
// check what crossed `lo` (a tunnel's datagrams, a move's TLS). The capture's file is read with
// `tshark -r` by the caller's own `read` before the folder is removed.
//
// dumpcap says "Capturing on 'lo'" before the kernel hands its capture anything (measured here: a
// datagram sent at once was missed 10 times in 10, one sent 100 ms later 2 in 10), and on SIGINT it
// drops what is still in the ring's unfinished block (one sent 100 ms before was missed 5 in 10). So
// both ends are proved with a marker datagram: the capture counts as started once a marker sent now
// has come through, and is stopped only once a marker sent after the caller's traffic has
// (the ring delivers in order). The markers go to an address nothing else uses; they stay in the
// file but `read` leaves them out (one tshark run fewer: it takes seconds to start here).
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from './daemon.ts';

/** `tshark -r FILE ARGS…`'s non-empty output lines. */
export type CaptureReader = (...args: string[]) => Promise<string[]>;

const MARKER_HOST = '127.83.77.1';
const MARKER_PORT = 9;
const MARKER_FILTER = `udp and dst host ${MARKER_HOST} and dst port ${MARKER_PORT}`;
const MARKER_DISPLAY = `udp && ip.dst == ${MARKER_HOST} && udp.dstport == ${MARKER_PORT}`;

/** tshark arguments with the markers left out of the display filter (-Y) the caller gave, or as its only one. */
function withoutMarkers(args: readonly string[]): string[] {
  const y = args.indexOf('-Y');
  if (y < 0) return [...args, '-Y', `!(${MARKER_DISPLAY})`];
  return args.map((a, i) => (i === y + 1 ? `(${a}) && !(${MARKER_DISPLAY})` : a));
}

/** Starts capturing `filter` on lo; `stop` ends it and hands `use` a reader of the file (whose markers it skips), then removes it. */
export async function captureLo(filter: string): Promise<{ stop<T>(use: (read: CaptureReader, file: string) => Promise<T>): Promise<T> }> {
  const dir = await mkdtemp(join(tmpdir(), 'vmhost-lo-cap-'));
  const file = join(dir, 'lo.pcapng');
  // dumpcap, tshark's capture engine, on its own: tshark takes seconds to load its dissectors before
  // it starts it. Written to a pipe, dumpcap hands on every packet at once; written to a file, every few seconds.
  const p = spawn('dumpcap', ['-i', 'lo', '-f', `(${filter}) or (${MARKER_FILTER})`, '-w', '-', '-q'], { stdio: ['ignore', 'pipe', 'pipe'] });
  // 'close', not 'exit': the last of its output may be read after it exited.
  const closed = new Promise((r) => p.once('close', r));
  let err = '';
  p.stderr.on('data', (b: Buffer) => { err += b.toString(); });
  const chunks: Buffer[] = [];
  p.stdout.on('data', (b: Buffer) => { chunks.push(b); });
  const captured = () => Buffer.concat(chunks);
  const sock = createSocket('udp4');
  const exec = promisify(execFile);
  const tshark = async (...args: string[]) => (await exec('tshark', args)).stdout;
  /** Sends a marker every 250 ms until the capture holds one. */
  const markerSeen = async (what: string) => {
    const marker = randomBytes(16);
    await waitFor(what, 60_000, async () => {
      if (p.exitCode !== null) throw new Error(`dumpcap exited: ${err}`);
      await new Promise<void>((r, j) => sock.send(marker, MARKER_PORT, MARKER_HOST, (e) => (e ? j(e) : r())));
      return captured().includes(marker);
    });
  };
  // Start-up is slow on a loaded machine; one that never gets there is killed, never left running (it would keep the test process alive).
  await markerSeen('dumpcap capturing').catch(async (e: unknown) => {
    p.kill('SIGKILL');
    sock.close();
    await rm(dir, { recursive: true, force: true });
    throw e;
  });
  return {
    async stop(use) {
      try {
        await markerSeen('dumpcap to have passed on everything sent before stop');
      } finally {
        sock.close();
        p.kill('SIGINT');
        await closed;
      }
      try {
        await writeFile(file, captured());
        const read: CaptureReader = async (...args) => (await tshark('-r', file, ...withoutMarkers(args))).split('\n').filter((l) => l.trim() !== '');
        return await use(read, file);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
