// Byte sizes as PowerShell writes them: 512, 512KB, 1.5GB, 2TB, 1PB (powers of 1024, case-insensitive).
// Pure; no dependencies.

const UNIT: Record<string, bigint> = {
  '': 1n,
  kb: 1n << 10n,
  mb: 1n << 20n,
  gb: 1n << 30n,
  tb: 1n << 40n,
  pb: 1n << 50n,
};

/** Parses a size into a whole number of bytes; undefined when the text is not one (or not a whole, safe integer). */
export function parseSize(text: string): number | undefined {
  const m = /^\s*(\d+)(?:\.(\d+))?\s*(kb|mb|gb|tb|pb)?\s*$/i.exec(text);
  if (!m) return undefined;
  const unit = UNIT[(m[3] ?? '').toLowerCase()]!;
  const frac = m[2] ?? '';
  const scaled = BigInt(m[1]! + frac) * unit;
  const divisor = 10n ** BigInt(frac.length);
  if (scaled % divisor !== 0n) return undefined; // 1.3KB is not a whole number of bytes
  const bytes = scaled / divisor;
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  return Number(bytes);
}

/** The largest unit that divides the size exactly, e.g. 1073741824 → "1GB", 1536 → "1536" (for help/defaults). */
export function formatSize(bytes: number): string {
  for (const u of ['PB', 'TB', 'GB', 'MB', 'KB'] as const) {
    const n = Number(UNIT[u.toLowerCase()]!);
    if (bytes !== 0 && bytes % n === 0) return `${bytes / n}${u}`;
  }
  return String(bytes);
}
