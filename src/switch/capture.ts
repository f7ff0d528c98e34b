// A capture point: frames written to a classic pcap file (src/packet's encoder) that tshark
// reads. Records are buffered and written in batches (at 64 KiB, on the next tick, and on
// stop) so a capture costs little per frame. Depends on packet.
import { closeSync, openSync, writeSync } from 'node:fs';
import { pcapHeader, pcapRecord } from '../packet/index.ts';

export class PcapCapture {
  private fd: number;
  private chunks: Uint8Array[] = [];
  private bytes = 0;
  private scheduled = false;
  frames = 0;

  constructor(readonly path: string, private readonly snaplen = 65535) {
    this.fd = openSync(path, 'w');
    writeSync(this.fd, pcapHeader({ snaplen, nanoseconds: true }));
  }

  write(frame: Uint8Array): void {
    if (this.fd < 0) return;
    const now = BigInt(Date.now()) * 1_000_000n + BigInt(Math.floor((performance.now() % 1) * 1e6));
    const rec = pcapRecord(frame, now, { snaplen: this.snaplen, nanoseconds: true });
    this.chunks.push(rec);
    this.bytes += rec.length;
    this.frames++;
    if (this.bytes >= 64 << 10) this.flush();
    else if (!this.scheduled) { this.scheduled = true; setImmediate(() => { this.scheduled = false; this.flush(); }); }
  }

  flush(): void {
    if (this.fd < 0 || this.chunks.length === 0) return;
    writeSync(this.fd, Buffer.concat(this.chunks));
    this.chunks = [];
    this.bytes = 0;
  }

  close(): { path: string; frames: number } {
    this.flush();
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    return { path: this.path, frames: this.frames };
  }
}
