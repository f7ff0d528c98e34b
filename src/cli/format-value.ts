// How one value reads in a table or list cell: PowerShell's conventions (True/False, {a, b}) and
// TimeSpan text ([d.]hh:mm:ss). Pure; no dependencies.

/** A PowerShell TimeSpan as text: `00:05:12`, `1.02:03:04`, `-00:00:05`. Fractions of a second are dropped. */
export function formatTimeSpan(seconds: number): string {
  const sign = seconds < 0 ? '-' : '';
  let s = Math.floor(Math.abs(seconds));
  const days = Math.floor(s / 86400);
  s -= days * 86400;
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  const two = (n: number) => String(n).padStart(2, '0');
  return `${sign}${days > 0 ? `${days}.` : ''}${two(hh)}:${two(mm)}:${two(ss)}`;
}

/**
 * Seconds from the shapes a duration may arrive in: a number of seconds, a TimeSpan-like object
 * ({ TotalSeconds } or { Ticks }, as PowerShell's ConvertTo-Json writes it), or undefined.
 */
export function durationSeconds(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (typeof o['TotalSeconds'] === 'number') return o['TotalSeconds'];
    if (typeof o['Ticks'] === 'number') return o['Ticks'] / 1e7;
  }
  return undefined;
}

/** One-line text for a table/list cell. */
export function formatCell(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v.replace(/\r?\n/g, ' ');
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (v instanceof Date) return v.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  if (Array.isArray(v)) return `{${v.map(formatCell).join(', ')}}`;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (typeof o['Name'] === 'string') return o['Name'];
    return JSON.stringify(v);
  }
  return String(v);
}
