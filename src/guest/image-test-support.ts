// Helpers for the image tests that boot a disk with plain QEMU (no vmhost host layer):
// firmware and disk arguments for both generations, a QEMU child whose serial console is
// collected, and the agent client on its virtio-serial port. Not exported from index.ts.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentClient } from './agent-client.ts';
import { agentChardevArgs } from './qemu-args.ts';

const OVMF = '/usr/share/OVMF';
const ANSI_ESCAPE = new RegExp(String.fromCharCode(27) + '\\[[0-9;=?]*[A-Za-z]', 'g');

/**
 * The skip reason for a test that needs these commands (and root, if asked), or false.
 * Under CI=true nothing is skipped: a missing tool must fail the run, not hide the test.
 */
export function skipUnless(tools: string[], needRoot = false): string | false {
  if (process.env.CI === 'true') return false;
  if (needRoot && process.getuid?.() !== 0) return 'needs root';
  const missing = tools.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  return missing.length > 0 ? `not installed: ${missing.join(', ')}` : false;
}

export type Firmware =
  | { kind: 'bios' }
  /** OVMF; `secureBoot` uses the SMM build with Microsoft's keys enrolled (the .ms vars). */
  | { kind: 'uefi'; secureBoot: boolean };

export type BootDisk =
  /** A VHDX that QEMU never writes: the guest writes a qcow2 overlay in the scratch dir. */
  | { base: string }
  /** An NBD export on a unix socket (qemu-nbd in the boot benchmark). */
  | { nbdSocket: string };

export type BootOptions = BootDisk & {
  firmware: Firmware;
  /** 'ide' (Generation 1) or 'scsi' (virtio-scsi, Generation 2). */
  bus: 'ide' | 'scsi';
  memoryMiB?: number;
  /** Direct kernel boot (the test guest) instead of the disk's boot loader. */
  kernel?: { kernel: string; initrd: string; append: string };
};

/** A scratch dir with a running QEMU, its serial output and an agent client. */
export class PlainQemu {
  readonly dir = mkdtempSync(join(tmpdir(), 'vmhost-img-'));
  serial = '';
  readonly agent: AgentClient;
  /** The qcow2 overlay the guest writes (its backing file is `base`; absent for an NBD disk). */
  readonly overlay = join(this.dir, 'overlay.qcow2');
  private readonly proc: ChildProcess;
  private readonly exited: Promise<unknown[]>;

  constructor(opts: BootOptions) {
    const sock = join(this.dir, 'agent.sock');
    if ('base' in opts) createOverlay(opts.base, this.overlay);
    const drive = 'base' in opts
      ? `file=${this.overlay},format=qcow2`
      : `driver=nbd,server.type=unix,server.path=${opts.nbdSocket}`;
    const kernel = opts.kernel ? ['-kernel', opts.kernel.kernel, '-initrd', opts.kernel.initrd, '-append', opts.kernel.append] : [];
    this.proc = spawn('qemu-system-x86_64', [
      '-accel', 'tcg', '-m', String(opts.memoryMiB ?? 1024), '-smp', '1', '-nographic', '-no-user-config',
      '-nic', 'none', // no PXE ROM to try after (or instead of) the disk
      ...firmwareArgs(opts.firmware, this.dir),
      ...diskArgs(drive, opts.bus),
      ...kernel,
      ...agentChardevArgs(sock),
    ], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stdout!.on('data', (c: Buffer) => { this.serial += c.toString('latin1'); });
    this.proc.stderr!.on('data', (c: Buffer) => { this.serial += c.toString('latin1'); });
    this.exited = once(this.proc, 'exit');
    this.agent = new AgentClient({ path: sock, reconnectDelayMs: 200, vm: 'img-test' });
  }

  get running(): boolean { return this.proc.exitCode === null && this.proc.signalCode === null; }

  /** Resolves when the serial console matches `re`; rejects after `timeoutMs` or if QEMU ends first. */
  async waitSerial(re: RegExp, timeoutMs: number): Promise<void> {
    for (const end = Date.now() + timeoutMs; !re.test(this.serial);) {
      if (!this.running) throw new Error(`QEMU exited before ${re}; serial tail: ${this.tail()}`);
      if (Date.now() > end) throw new Error(`${re} not on the serial console after ${timeoutMs} ms; tail: ${this.tail()}`);
      await sleep(200);
    }
  }

  /** Resolves with QEMU's exit code once it ends; rejects after `timeoutMs`. */
  async waitExit(timeoutMs: number): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Error(`QEMU still running after ${timeoutMs} ms; tail: ${this.tail()}`)), timeoutMs); });
    try {
      const [code] = await Promise.race([this.exited, timeout]);
      return code as number | null;
    } finally { clearTimeout(timer); }
  }

  /** The end of the serial output without the firmware's terminal escapes (ESC [ … letter). */
  tail(chars = 1500): string { return this.serial.slice(-chars).replace(ANSI_ESCAPE, ''); }

  async close(): Promise<void> {
    await this.agent.close();
    if (this.running) { this.proc.kill('SIGKILL'); await this.exited; }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function firmwareArgs(fw: Firmware, dir: string): string[] {
  if (fw.kind === 'bios') return ['-machine', 'pc'];
  // The vars store is written by the firmware: each boot gets its own copy.
  const vars = join(dir, 'OVMF_VARS.fd');
  copyFileSync(join(OVMF, fw.secureBoot ? 'OVMF_VARS_4M.ms.fd' : 'OVMF_VARS_4M.fd'), vars);
  const code = join(OVMF, fw.secureBoot ? 'OVMF_CODE_4M.secboot.fd' : 'OVMF_CODE_4M.fd');
  return [
    // The secure boot build keeps its variables in SMM-protected flash: smm=on and a
    // secure pflash, or the firmware stops before the boot manager.
    '-machine', fw.secureBoot ? 'q35,smm=on' : 'q35',
    ...(fw.secureBoot ? ['-global', 'driver=cfi.pflash01,property=secure,value=on'] : []),
    '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${code}`,
    '-drive', `if=pflash,format=raw,unit=1,file=${vars}`,
  ];
}

function diskArgs(drive: string, bus: BootOptions['bus']): string[] {
  const args = ['-drive', `${drive},if=none,id=d0`];
  return bus === 'ide'
    ? [...args, '-device', 'ide-hd,drive=d0,bus=ide.0']
    : [...args, '-device', 'virtio-scsi-pci,id=scsi0', '-device', 'scsi-hd,drive=d0,bus=scsi0.0'];
}

/** A qcow2 overlay over a VHDX that QEMU then opens read-only. */
function createOverlay(base: string, overlay: string): void {
  const r = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'vhdx', '-b', base, overlay], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`qemu-img create overlay failed: ${r.stderr}`);
}
