// Initial replication on media (Start-VMInitialReplication -DestinationPath, Import-
// VMInitialReplication -Path): the initial point's frames — exactly what would cross the wire,
// deflated when the relationship compresses — written to `<DIR>/<VM id>/initial.vrep` beside
// `media.json`, for a disk carried to the Replica server. The manifest names the VM, the
// primary's certificate name, the point's time, the copy's id, the drives (ids and sizes) and
// each file's length and sha256. The file is flushed and the manifest written before the
// primary commits the take, so the cycles after it carry only what changed since the copy;
// until the Replica server imported it (WaitingForInitialReplication) a tick only asks it which
// copy it holds (the answer to a hello names it) and takes no point: no pause, no freeze. The import
// checks every file against the manifest before it writes anything (one more sequential read
// of the media, the price of refusing a truncated or damaged copy with nothing half-imported).
// The media are not authenticated: the admin who carries them vouches for them; the import
// still needs an authorization entry for the primary's name, which decides the storage folder,
// as a connection would.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { VmhostError } from '../common/index.ts';
import { writeFileAtomic } from '../host/index.ts';
import type { FrameSink } from './send-point.ts';
import { encodeFrame, readFrames, type Frame, type WireDrive } from './wire.ts';

export interface MediaManifest {
  vmId: string;
  vmName: string;
  primaryServer: string;
  /** The copy's point in time and id (the `begin` frame's). */
  time: string;
  base: string;
  drives: Array<Pick<WireDrive, 'id' | 'fileName' | 'virtualSize'>>;
  files: Array<{ name: string; bytes: number; sha256: string }>;
}

export const MEDIA_FILE = 'initial.vrep';
const MANIFEST = 'media.json';

function invalid(path: string, message: string): VmhostError {
  return new VmhostError('REPLICATION_PROTOCOL', `the initial replication on ${path} ${message}: copy the media again (or run Start-VMInitialReplication -DestinationPath again)`, { path });
}

/** A sink writing frames to the media file, hashing them; `expect('ack')` flushes it and writes the manifest. */
export class MediaSink implements FrameSink {
  private readonly hash = createHash('sha256');
  private bytes = 0;
  private begin: Extract<Frame, { t: 'begin' }> | undefined;

  private constructor(private readonly dir: string, private readonly fh: FileHandle, private readonly vm: Pick<MediaManifest, 'vmId' | 'vmName' | 'primaryServer'>) {}

  static async create(destination: string, vm: Pick<MediaManifest, 'vmId' | 'vmName' | 'primaryServer'>): Promise<MediaSink> {
    const dir = join(destination, vm.vmId);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return new MediaSink(dir, await open(join(dir, MEDIA_FILE), 'wx', 0o600), vm);
  }

  async send(f: Frame, payload?: Uint8Array): Promise<void> {
    if (f.t === 'begin') this.begin = f;
    // One write per frame: a header and its 1 MiB payload joined, not three small writes.
    const buf = Buffer.concat(encodeFrame(f, payload));
    this.hash.update(buf);
    this.bytes += buf.length;
    await this.fh.write(buf);
  }

  async expect(): Promise<Extract<Frame, { t: 'ack' }>> {
    const b = this.begin;
    if (!b?.base) throw new VmhostError('INTERNAL', 'an initial replication on media without its copy id', { path: this.dir });
    await this.fh.sync();
    await this.fh.close();
    const manifest: MediaManifest = {
      ...this.vm, time: b.time, base: b.base, drives: b.drives.map((d) => ({ id: d.id, fileName: d.fileName, virtualSize: d.virtualSize })),
      files: [{ name: MEDIA_FILE, bytes: this.bytes, sha256: this.hash.digest('hex') }],
    };
    await writeFileAtomic(join(this.dir, MANIFEST), JSON.stringify(manifest, null, 2));
    return { t: 'ack', seq: 0, points: 0 };
  }

  async abort(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
}

function checkManifest(m: unknown, where: string): MediaManifest {
  const x = m as Partial<MediaManifest> | null;
  const str = (v: unknown) => typeof v === 'string' && v.length > 0;
  if (typeof x !== 'object' || x === null || !str(x.vmId) || !str(x.vmName) || !str(x.primaryServer) || !str(x.time) || !str(x.base)
    || !Array.isArray(x.drives) || !Array.isArray(x.files) || !x.files.some((f) => f.name === MEDIA_FILE)
    || !x.files.every((f) => str(f.name) && !/[/\\]|^\.\.?$/.test(f.name) && Number.isSafeInteger(f.bytes) && /^[0-9a-f]{64}$/.test(f.sha256))) {
    throw invalid(where, `has a malformed ${MANIFEST}`);
  }
  return x as MediaManifest;
}

/** Each file of the media has the manifest's length and sha256. */
async function verify(dir: string, m: MediaManifest): Promise<void> {
  for (const f of m.files) {
    const path = join(dir, f.name);
    const size = await stat(path).then((s) => s.size, () => -1);
    if (size < 0) throw invalid(dir, `lacks ${f.name}`);
    if (size !== f.bytes) throw invalid(dir, `is ${size < f.bytes ? 'truncated' : 'longer than written'}: ${f.name} holds ${size} bytes, the manifest says ${f.bytes}`);
    const h = createHash('sha256');
    for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
    const got = h.digest('hex');
    if (got !== f.sha256) throw invalid(dir, `is damaged: the sha256 of ${f.name} is ${got}, the manifest says ${f.sha256}`);
  }
}

/** The begin frame must be the copy the manifest describes (a manifest beside another VM's frames is a wrong file). */
export function checkBegin(begin: Frame, m: MediaManifest, where: string): Extract<Frame, { t: 'begin' }> {
  if (begin.t !== 'begin' || begin.kind !== 'initial') throw invalid(where, `holds '${begin.t}' where an initial replication's begin was due`);
  const same = begin.base === m.base && begin.time === m.time && begin.drives.length === m.drives.length
    && begin.drives.every((d, i) => d.id === m.drives[i]!.id && d.virtualSize === m.drives[i]!.virtualSize);
  if (!same) throw invalid(where, `is not the copy ${MANIFEST} describes (its copy id, time or drives differ)`);
  return begin;
}

/** The verified media for `vmName` under `path` (the -DestinationPath folder, or a VM's folder in it): its manifest and frames. */
export async function openMedia(path: string, vmName: string): Promise<{ dir: string; manifest: MediaManifest; frames: AsyncGenerator<{ frame: Frame; payload: Buffer | undefined }> }> {
  const candidates = [path, ...(await readdir(path).catch(() => [] as string[])).map((d) => join(path, d))];
  for (const dir of candidates) {
    const text = await readFile(join(dir, MANIFEST), 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw invalid(dir, `has a ${MANIFEST} that is not JSON`);
    }
    const m = checkManifest(json, dir);
    if (m.vmName.toLowerCase() !== vmName.toLowerCase()) continue;
    await verify(dir, m);
    return { dir, manifest: m, frames: readFrames(createReadStream(join(dir, MEDIA_FILE), { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) };
  }
  throw new VmhostError('NOT_FOUND', `no initial replication of '${vmName}' in ${path} (Start-VMInitialReplication -DestinationPath writes <VM id>/${MANIFEST} and ${MEDIA_FILE})`, { path, vm: vmName });
}
