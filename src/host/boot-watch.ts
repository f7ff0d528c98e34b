// Watches what the firmware prints while a VM boots through it, so a boot that fails (no
// bootable device, an image secure boot refuses) becomes an event and shows in Get-VM's
// Status instead of a silent black screen. OVMF prints its boot manager's lines on the
// serial console; SeaBIOS prints to its debug console (I/O port 0x402, our firmware.log).
import { open } from 'node:fs/promises';

const POLL_MS = 1000;
const WATCH_MS = 5 * 60_000;

/** The failure a firmware's output reports, or undefined while it reports none. */
export function firmwareBootFailure(text: string): string | undefined {
  // OVMF: `BdsDxe: failed to start Boot0001 "UEFI QEMU HARDDISK …" from …: Access Denied`.
  const refused = /BdsDxe: failed to (?:load|start) (Boot[0-9A-F]{4}) "([^"]*)"[^\n]*?: (Access Denied|Security Violation)/.exec(text);
  if (refused) return `secure boot refused to start ${refused[1]} "${refused[2]}" (${refused[3]}): the image is not signed by a key the firmware trusts`;
  if (/BdsDxe: No bootable option or device was found/.test(text)) return 'the UEFI firmware found no bootable device';
  if (/No bootable device\./.test(text)) return 'the BIOS found no bootable device';
  return undefined;
}

/**
 * Polls the firmware's output files from where they ended before QEMU started until a
 * failure shows, the boot is known good, or time runs out. Two steps, because the ends must
 * be taken before QEMU starts and the listener (the VM's runtime) exists only after.
 */
export class BootWatch {
  private timer: NodeJS.Timeout | undefined;
  private until = 0;
  private text = '';
  private onFailure: (reason: string) => void = () => undefined;

  private constructor(private readonly files: { path: string; offset: number }[]) {}

  /** Takes the files' current ends; nothing is read before begin(). */
  static async mark(paths: string[]): Promise<BootWatch> {
    return new BootWatch(await Promise.all(paths.map(async (path) => ({ path, offset: await sizeOf(path) }))));
  }

  begin(onFailure: (reason: string) => void): this {
    this.onFailure = onFailure;
    this.until = Date.now() + WATCH_MS;
    this.timer = setInterval(() => void this.poll(), POLL_MS);
    this.timer.unref();
    return this;
  }

  /** The guest is up (its agent answered) or the VM stopped: nothing more to watch. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async poll(): Promise<void> {
    if (Date.now() > this.until) return this.stop();
    for (const f of this.files) {
      const fh = await open(f.path, 'r').catch(() => undefined);
      if (!fh) continue;
      try {
        const buf = Buffer.alloc(64 * 1024);
        const { bytesRead } = await fh.read(buf, 0, buf.length, f.offset);
        f.offset += bytesRead;
        // Keep a bounded tail: a failure line may arrive split across two polls.
        this.text = (this.text + buf.subarray(0, bytesRead).toString('latin1')).slice(-16 * 1024);
      } finally {
        await fh.close();
      }
    }
    const reason = firmwareBootFailure(this.text);
    if (reason && this.timer) {
      this.stop();
      this.onFailure(reason);
    }
  }
}

async function sizeOf(path: string): Promise<number> {
  const fh = await open(path, 'r').catch(() => undefined);
  if (!fh) return 0;
  try { return (await fh.stat()).size; } finally { await fh.close(); }
}
