// A POSIX ustar archive of in-memory files (Save-CauDebugTrace's), pure: a 512-byte header per
// file, its data padded to 512 bytes, two zero blocks at the end. Readable by tar(1) and by
// Windows' tar.exe. Names longer than 100 bytes are split into the header's prefix (≤ 155) and name.
import { VmhostError } from '../common/index.ts';

const BLOCK = 512;

function field(h: Buffer, offset: number, length: number, value: string): void {
  h.write(value, offset, length, 'utf8');
}

/** A number in octal, zero-padded to `length - 1` digits and NUL-terminated, as ustar wants. */
function octal(n: number, length: number): string {
  return n.toString(8).padStart(length - 1, '0') + '\0';
}

function splitName(name: string): { prefix: string; base: string } {
  if (Buffer.byteLength(name) <= 100) return { prefix: '', base: name };
  for (let i = name.indexOf('/'); i >= 0; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i);
    const base = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(base) <= 100) return { prefix, base };
  }
  throw new VmhostError('INVALID_ARGUMENT', `An archive entry's name is too long for ustar: ${name}`, { name });
}

export function tarArchive(files: readonly { Name: string; Data: Buffer }[], mtime: Date): Buffer {
  const parts: Buffer[] = [];
  const seconds = Math.floor(mtime.getTime() / 1000);
  for (const f of files) {
    const h = Buffer.alloc(BLOCK);
    const { prefix, base } = splitName(f.Name);
    field(h, 0, 100, base);
    field(h, 100, 8, octal(0o644, 8));
    field(h, 108, 8, octal(0, 8));
    field(h, 116, 8, octal(0, 8));
    field(h, 124, 12, octal(f.Data.length, 12));
    field(h, 136, 12, octal(seconds, 12));
    field(h, 148, 8, '        '); // the checksum counts its own field as spaces
    field(h, 156, 1, '0');
    field(h, 257, 6, 'ustar\0');
    field(h, 263, 2, '00');
    field(h, 345, 155, prefix);
    let sum = 0;
    for (const b of h) sum += b;
    field(h, 148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
    parts.push(h, f.Data, Buffer.alloc((BLOCK - (f.Data.length % BLOCK)) % BLOCK));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}
