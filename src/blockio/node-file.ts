// BlockFile over a real file (node:fs/promises FileHandle). The only place block I/O meets
// the host file system; engines get this object and never import node:fs themselves.
import { open as fsOpen, type FileHandle } from 'node:fs/promises';
import type { BlockFile } from './block-file.ts';
import { mapFd, type FileExtent } from './file-map.ts';

export class NodeFile implements BlockFile {
  readonly name: string;
  readonly readOnly: boolean;
  private fh: FileHandle;

  private constructor(fh: FileHandle, name: string, readOnly: boolean) {
    this.fh = fh;
    this.name = name;
    this.readOnly = readOnly;
  }

  /** Open `path`. `create` makes a new file (fails if it exists unless `overwrite`). */
  static async open(path: string, opts: { readOnly?: boolean; create?: boolean; overwrite?: boolean } = {}): Promise<NodeFile> {
    const readOnly = opts.readOnly ?? false;
    const flags = readOnly ? 'r' : opts.create ? (opts.overwrite ? 'w+' : 'wx+') : 'r+';
    const fh = await fsOpen(path, flags, 0o644);
    return new NodeFile(fh, path, readOnly);
  }

  get fd(): number {
    return this.fh.fd;
  }

  async read(buf: Uint8Array, offset: number): Promise<void> {
    let done = 0;
    while (done < buf.length) {
      const { bytesRead } = await this.fh.read(buf, done, buf.length - done, offset + done);
      if (bytesRead === 0) {
        buf.fill(0, done);
        return;
      }
      done += bytesRead;
    }
  }
  async write(buf: Uint8Array, offset: number): Promise<void> {
    let done = 0;
    while (done < buf.length) {
      const { bytesWritten } = await this.fh.write(buf, done, buf.length - done, offset + done);
      done += bytesWritten;
    }
  }
  async mapData(offset: number, length: number): Promise<FileExtent[]> {
    return mapFd(this.fh.fd, offset, length);
  }
  async flush(): Promise<void> {
    await this.fh.sync();
  }
  async size(): Promise<number> {
    return (await this.fh.stat()).size;
  }
  async truncate(size: number): Promise<void> {
    await this.fh.truncate(size);
  }
  async close(): Promise<void> {
    await this.fh.close();
  }
}

export function openNodeFile(path: string, opts: { readOnly?: boolean; create?: boolean; overwrite?: boolean } = {}): Promise<NodeFile> {
  return NodeFile.open(path, opts);
}
