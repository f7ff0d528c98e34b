// The host vNIC helper (native/vmhost-tapd.c) seen from the daemon: its binary (built by
// scripts/build-tapd.sh, which does nothing when the source is unchanged; run once per
// process), one running relay, deleting a tap, and the helper's exit codes as typed errors.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VmhostError, type ErrorCode } from '../common/index.ts';

const script = resolve(dirname(fileURLToPath(import.meta.url)), '../../scripts/build-tapd.sh');
/** Creating a tap takes milliseconds; the helper waits up to 5 s for a previous relay to let go of it. */
const READY_TIMEOUT_MS = 10_000;

let binary: Promise<string> | undefined;

function tapdBinary(): Promise<string> {
  binary ??= new Promise<string>((ok, fail) => {
    execFile('bash', [script], { timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) {
        binary = undefined; // a later call retries (gcc installed meanwhile)
        fail(new VmhostError('HOST_NIC_HELPER_BUILD_FAILED', `build-tapd.sh failed: ${stderr.trim().split('\n').slice(-3).join(' ')}`, { op: 'build-tapd', path: script }, { cause: err }));
        return;
      }
      ok(stdout.trim().split('\n').pop() ?? '');
    });
  });
  return binary;
}

/** The helper's exit codes (its enum) → error code and what the admin should know. */
const EXITS: Record<number, readonly [ErrorCode, string]> = {
  3: ['HOST_NIC_NO_PERMISSION', 'creating a tap interface needs root (CAP_NET_ADMIN)'],
  4: ['HOST_NIC_NO_TUN', '/dev/net/tun is missing (load the tun module: modprobe tun)'],
  5: ['HOST_NIC_PORT_UNREACHABLE', 'the helper could not connect to the switch port'],
  6: ['HOST_NIC_BUSY', 'another process holds the tap interface'],
};

export interface HelperExit { readonly code: number | null; readonly signal: NodeJS.Signals | null; readonly stderr: string }

export function describeExit(x: HelperExit): string {
  const last = x.stderr.trim().split('\n').pop();
  return last || (x.signal ? `killed by ${x.signal}` : `exit code ${x.code}`);
}

function helperError(op: string, ifname: string, x: HelperExit): VmhostError {
  const [code, why] = (x.code !== null ? EXITS[x.code] : undefined) ?? ['HOST_NIC_FAILED', 'the tap helper failed'];
  return new VmhostError(code, `Host vNIC ${ifname}: ${why}: ${describeExit(x)}`, { op, interface: ifname, exitCode: x.code ?? undefined });
}

export interface TapSpec { readonly ifname: string; readonly mac: string; readonly socketPath: string }

/** One running helper: the tap `ifname` relayed to the switch port at `socketPath`. */
export class TapRelay {
  private constructor(private readonly proc: ChildProcess, readonly exited: Promise<HelperExit>) {}

  /** Resolves once the tap is up and connected to the port; a failure is the helper's typed error. */
  static async start(spec: TapSpec): Promise<TapRelay> {
    const bin = await tapdBinary();
    const proc = spawn(bin, ['--ifname', spec.ifname, '--mac', spec.mac.toLowerCase(), '--socket', spec.socketPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    proc.stderr!.on('data', (b: Buffer) => { stderr = (stderr + b.toString()).slice(-4096); });
    proc.on('error', (e) => { stderr += `${e.message}\n`; }); // spawn failure; 'close' follows
    const exited = new Promise<HelperExit>((r) => proc.on('close', (code, signal) => r({ code, signal, stderr })));
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((ok, fail) => {
        proc.stdout!.on('data', (b: Buffer) => { if (b.toString().includes('ready')) ok(); });
        void exited.then((x) => fail(helperError('tap-attach', spec.ifname, x)));
        timer = setTimeout(() => fail(new VmhostError('HOST_NIC_FAILED', `Host vNIC ${spec.ifname}: the tap helper did not get ready in ${READY_TIMEOUT_MS / 1000} s`, { op: 'tap-attach', interface: spec.ifname })), READY_TIMEOUT_MS);
      });
    } catch (e) {
      proc.kill('SIGKILL');
      throw e;
    } finally {
      clearTimeout(timer);
    }
    return new TapRelay(proc, exited);
  }

  /** Stops the relay; the tap stays (persistent) with its addresses, without carrier. */
  async stop(): Promise<void> {
    this.proc.kill('SIGTERM');
    await this.exited;
  }
}

/** Removes the tap interface (no relay may hold it any more). */
export async function deleteTap(ifname: string): Promise<void> {
  const bin = await tapdBinary();
  await new Promise<void>((ok, fail) => {
    execFile(bin, ['--delete', '--ifname', ifname], { timeout: READY_TIMEOUT_MS }, (err, _stdout, stderr) => {
      if (!err) { ok(); return; }
      const code = typeof err.code === 'number' ? err.code : null;
      fail(helperError('tap-delete', ifname, { code, signal: err.signal ?? null, stderr }));
    });
  });
}
