// Initial replication on media (Start-VMInitialReplication -DestinationPath, Import-
// VMInitialReplication -Path): the initial point's frames — exactly what would cross the wire,
// deflated when the relationship compresses — written to `<DIR>/<VM id>/initial.vrep` beside
// `media.json` (the VM, the primary's certificate name, the point's time), for a disk carried
// to the Replica server. The file is flushed before the primary commits the take, so the
// cycles after it carry only what changed since the copy; they wait (WaitingForInitialReplication)
// until the Replica server imported it. The media are not authenticated: the admin who carries
// them vouches for them; the import still needs an authorization entry for the primary's name,
// which decides the storage folder, as a connection would.
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { VmhostError } from '../common/index.ts';
import { writeFileAtomic } from '../host/index.ts';
import type { FrameSink } from './send-point.ts';
import { encodeFrame, readFrames, type Frame } from './wire.ts';

export interface MediaManifest { vmId: string; vmName: string; primaryServer: string; time: string }

export const MEDIA_FILE = 'initial.vrep';
const MANIFEST = 'media.json';

/** A sink writing frames to the media file; `expect('ack')` flushes it and writes the manifest. */
export class MediaSink implements FrameSink {
  private constructor(private readonly dir: string, private readonly fh: FileHandle, private readonly manifest: Omit<MediaManifest, 'time'>) {}
  private time = '';

  static async create(destination: string, manifest: Omit<MediaManifest, 'time'>): Promise<MediaSink> {
    const dir = join(destination, manifest.vmId);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return new MediaSink(dir, await open(join(dir, MEDIA_FILE), 'wx', 0o600), manifest);
  }

  async send(f: Frame, payload?: Uint8Array): Promise<void> {
    if (f.t === 'begin') this.time = f.time;
    for (const b of encodeFrame(f, payload)) await this.fh.write(b);
  }

  async expect(): Promise<Extract<Frame, { t: 'ack' }>> {
    await this.fh.sync();
    await this.fh.close();
    await writeFileAtomic(join(this.dir, MANIFEST), JSON.stringify({ ...this.manifest, time: this.time } satisfies MediaManifest, null, 2));
    return { t: 'ack', seq: 0, points: 0 };
  }

  async abort(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** The media for `vmName` under `path` (the -DestinationPath folder, or a VM's folder in it). */
export async function findMedia(path: string, vmName: string): Promise<{ manifest: MediaManifest; frames: AsyncGenerator<{ frame: Frame; payload: Buffer | undefined }> }> {
  const candidates = [path, ...(await readdir(path).catch(() => [] as string[])).map((d) => join(path, d))];
  for (const dir of candidates) {
    const m = await readFile(join(dir, MANIFEST), 'utf8').then((t) => JSON.parse(t) as MediaManifest, () => undefined);
    if (m && m.vmName.toLowerCase() === vmName.toLowerCase()) return { manifest: m, frames: readFrames(createReadStream(join(dir, MEDIA_FILE), { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) };
  }
  throw new VmhostError('NOT_FOUND', `no initial replication of '${vmName}' in ${path} (Start-VMInitialReplication -DestinationPath writes <VM id>/${MANIFEST} and ${MEDIA_FILE})`, { path, vm: vmName });
}
