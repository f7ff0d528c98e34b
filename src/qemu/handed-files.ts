// Files QEMU gets as open descriptors instead of paths. Under `-runas` QEMU opens its files
// as root and then drops to its own user; but finishing a migration (Save-VM, a checkpoint's
// memory, live migration) inactivates every block node, and file-posix then reopens a
// read-write image by path with new flags — which QEMU's user cannot do in the daemon's
// private (0700) data dir, so the migration fails ("bdrv_inactivate_all() failed"). Handed
// over as an fd set holding a read-write and a read-only descriptor (`-add-fd`, then
// `file=/dev/fdset/N`), the reopen dups the descriptor of the right mode instead.
// Depends on nothing.

export interface HandedFile {
  /** The descriptor number in QEMU (its stdio index). */
  fd: number;
  path: string;
  readOnly: boolean;
}

/** fd 3 is `-incoming` (incoming-file.ts); handed files start above it. */
export const HANDED_FD_BASE = 4;

export interface Handover {
  /** The `-add-fd` arguments. */
  args: string[];
  /** What the drive's `file=` names. */
  file: string;
  files: HandedFile[];
}

/** Hand `path` over as fd set `set`, on descriptors `firstFd` (read-write) and `firstFd + 1` (read-only). */
export function handOver(path: string, set: number, firstFd: number): Handover {
  const files = [{ fd: firstFd, path, readOnly: false }, { fd: firstFd + 1, path, readOnly: true }];
  return {
    args: files.flatMap((f) => ['-add-fd', `fd=${f.fd},set=${set}`]),
    file: `/dev/fdset/${set}`,
    files,
  };
}
