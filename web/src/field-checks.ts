// The console's own checks of what a user typed, run as each wizard page or form is left so a
// mistake is named at once, on its field, in words (the browser's native number validation
// — "the nearest valid values are…" — is never used: fields are text with these checks).
// They repeat the host's rules (src/host/vm-config.ts, src/host/new-vm.ts) for the pages;
// the API still checks everything, and its answer is shown the same way.
// Each returns the message, or undefined when the value is fine.

const MB = 1024 * 1024;
export const GB = 1024 * MB;

/** A whole, non-negative number typed in a text field, or undefined. */
export function wholeNumber(text: string): number | undefined {
  const t = text.trim();
  return /^\d+$/.test(t) ? Number(t) : undefined;
}

export function checkVmName(name: string, existing: readonly string[]): string | undefined {
  if (name.trim() === '') return 'Enter a name for the virtual machine.';
  if (name.length > 100) return 'The name is longer than 100 characters.';
  if (name.trim() !== name) return 'The name must not start or end with spaces.';
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused here
  if (/[*?[\]\\/:"<>|\x00-\x1f]/.test(name)) return 'The name contains a character that is not allowed (* ? [ ] \\ / : " < > | or a control character).';
  const taken = existing.find((n) => n.toLowerCase() === name.toLowerCase());
  if (taken !== undefined) return `A virtual machine named '${taken}' already exists on this host. Choose another name.`;
  return undefined;
}

/** Startup memory in MB, Hyper-V's bounds: at least 32 MB, a multiple of 2 MB, at most 1 TB. */
export function checkMemoryMb(text: string): string | undefined {
  const mb = wholeNumber(text);
  if (mb === undefined) return text.trim() === '' ? 'Enter the startup memory in MB.' : `'${text.trim()}' is not a whole number of MB.`;
  if (mb < 32) return `${mb} MB is below the minimum of 32 MB.`;
  if (mb > 1024 * 1024) return `${mb} MB is above the maximum of 1 TB (1048576 MB).`;
  if (mb % 2 !== 0) return `${mb} MB is not a multiple of 2 MB.`;
  return undefined;
}

export function checkProcessors(text: string, hostProcessors: number | undefined): string | undefined {
  const n = wholeNumber(text);
  const max = Math.min(64, hostProcessors ?? 64);
  if (n === undefined || n < 1 || n > max) {
    return `Enter a number of virtual processors from 1 to ${max}${hostProcessors ? ` (this host has ${hostProcessors} logical processors)` : ''}.`;
  }
  return undefined;
}

export function checkHostPath(path: string, what: string): string | undefined {
  if (path.trim() === '') return `Enter the path of the ${what}.`;
  if (!path.startsWith('/')) return `The ${what} must be an absolute path on the host (starting with /).`;
  if (path.endsWith('/')) return `The path of the ${what} names a folder: add the file name.`;
  return undefined;
}

/** A new dynamic disk: a .vhdx (up to 64 TB) or .vhd (up to 2040 GB) file, sized in whole GB. */
export function checkNewDisk(path: string, sizeGbText: string): { param: 'Path' | 'Size'; message: string } | undefined {
  const bad = checkHostPath(path, 'new virtual hard disk');
  if (bad) return { param: 'Path', message: bad };
  const ext = /\.(vhdx?)$/i.exec(path)?.[1]?.toLowerCase();
  if (!ext) return { param: 'Path', message: 'A new virtual hard disk must be named .vhdx (or .vhd for the older format).' };
  const gb = wholeNumber(sizeGbText);
  const max = ext === 'vhdx' ? 64 * 1024 : 2040;
  if (gb === undefined || gb < 1) return { param: 'Size', message: 'Enter the disk size as a whole number of GB, at least 1.' };
  if (gb > max) return { param: 'Size', message: `${gb} GB is larger than a .${ext} file can be (at most ${ext === 'vhdx' ? '64 TB' : '2040 GB'}).` };
  return undefined;
}
