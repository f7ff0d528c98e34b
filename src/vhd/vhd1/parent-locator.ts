// Parent locators of a differencing disk: the platform codes, the encoding of each kind
// of locator data, and how a child's header names its parent. We write three locators —
// W2ru (relative path, UTF-16LE), W2ku (absolute path, UTF-16LE) and MacX (file URL,
// UTF-8) — and read those plus the deprecated Wi2r/Wi2k (ASCII). The engine only decodes
// path strings; turning them into an open disk is the caller's resolver (open.ts).
import type { LocatorEntry } from './dynamic-header.ts';

function code(s: string): number {
  return ((s.charCodeAt(0) << 24) | (s.charCodeAt(1) << 16) | (s.charCodeAt(2) << 8) | s.charCodeAt(3)) >>> 0;
}

export const Platform = {
  None: 0,
  Wi2r: code('Wi2r'),
  Wi2k: code('Wi2k'),
  W2ru: code('W2ru'),
  W2ku: code('W2ku'),
  Mac: code('Mac '),
  MacX: code('MacX'),
} as const;

/** Locator data larger than this is refused as corrupt (a path is never this long). */
export const MAX_LOCATOR_BYTES = 64 * 1024;

export function platformName(c: number): string {
  return String.fromCharCode((c >>> 24) & 0xff, (c >>> 16) & 0xff, (c >>> 8) & 0xff, c & 0xff);
}

export function encodeUtf16le(s: string): Uint8Array {
  const out = new Uint8Array(s.length * 2);
  for (let i = 0; i < s.length; i++) {
    out[i * 2] = s.charCodeAt(i) & 0xff;
    out[i * 2 + 1] = s.charCodeAt(i) >> 8;
  }
  return out;
}

function decodeUtf16le(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i + 1 < b.length; i += 2) {
    const c = b[i]! | (b[i + 1]! << 8);
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  return s;
}

export function fileUrl(path: string): string {
  return 'file://' + encodeURI(path);
}

/** The path a locator's data names, or null for kinds we cannot turn into a path (Mac alias). */
export function decodeLocatorPath(entry: LocatorEntry, data: Uint8Array): string | null {
  switch (entry.platformCode) {
    case Platform.W2ku:
    case Platform.W2ru:
      return decodeUtf16le(data) || null;
    case Platform.Wi2k:
    case Platform.Wi2r: {
      const z = data.indexOf(0);
      return String.fromCharCode(...data.subarray(0, z < 0 ? data.length : z)) || null;
    }
    case Platform.MacX: {
      const text = new TextDecoder('utf-8', { fatal: false }).decode(data).replace(/\0.*$/s, '');
      if (!text.startsWith('file://')) return null;
      try {
        return decodeURI(text.slice('file://'.length).replace(/^localhost/, '')) || null;
      } catch {
        return null;
      }
    }
    default:
      return null;
  }
}

/** Preference order of the paths handed to the resolver: relative first (survives moving a chain). */
export const LOCATOR_PREFERENCE = [Platform.W2ru, Platform.W2ku, Platform.Wi2r, Platform.Wi2k, Platform.MacX];

/** POSIX relative path from the directory of `from` to `to`; null when either is not absolute. */
export function relativePath(from: string, to: string): string | null {
  if (!from.startsWith('/') || !to.startsWith('/')) return null;
  const a = from.split('/').filter(Boolean).slice(0, -1);
  const b = to.split('/').filter(Boolean);
  let i = 0;
  while (i < a.length && i < b.length - 1 && a[i] === b[i]) i++;
  const up = a.slice(i).map(() => '..');
  return [up.length ? up.join('/') : '.', ...b.slice(i)].join('/');
}

export function baseName(path: string): string {
  return path.split(/[\\/]/).filter(Boolean).pop() ?? path;
}

/**
 * Turns a locator path into a path on this host, for resolvers: backslashes (as Windows
 * writes them, e.g. ".\parent.vhd") become slashes, and a relative path is taken from the
 * child's directory. Drive-letter paths ("C:\vms\a.vhd") come back with slashes, unresolved.
 */
export function resolveLocatorPath(childPath: string, locatorPath: string): string {
  const p = locatorPath.replace(/\\/g, '/');
  if (p.startsWith('/') || /^[A-Za-z]:\//.test(p)) return p;
  const dir = childPath.replace(/\\/g, '/').split('/').slice(0, -1);
  const out = dir.length ? [...dir] : ['.'];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..' && out.length > 1 && out[out.length - 1] !== '..') out.pop();
    else out.push(part);
  }
  return out.join('/') || '/';
}
