// Text → key presses, for "Type clipboard". QEMU takes raw scancodes from noVNC (the QEMU
// extended key event), so a character is the physical key of a US keyboard plus Shift when
// needed; characters with no key on it go as bare keysyms and QEMU maps them itself.
export interface KeyStroke { keysym: number; code: string | null; shift: boolean }

const SHIFTED_DIGITS = ')!@#$%^&*(';
const PUNCT: Record<string, [string, boolean]> = {
  '-': ['Minus', false], _: ['Minus', true], '=': ['Equal', false], '+': ['Equal', true],
  '[': ['BracketLeft', false], '{': ['BracketLeft', true], ']': ['BracketRight', false], '}': ['BracketRight', true],
  '\\': ['Backslash', false], '|': ['Backslash', true], ';': ['Semicolon', false], ':': ['Semicolon', true],
  "'": ['Quote', false], '"': ['Quote', true], ',': ['Comma', false], '<': ['Comma', true],
  '.': ['Period', false], '>': ['Period', true], '/': ['Slash', false], '?': ['Slash', true],
  '`': ['Backquote', false], '~': ['Backquote', true], ' ': ['Space', false],
};

export const XK_SHIFT_L = 0xffe1;

export function strokeFor(ch: string): KeyStroke | undefined {
  if (ch === '\n') return { keysym: 0xff0d, code: 'Enter', shift: false };
  if (ch === '\t') return { keysym: 0xff09, code: 'Tab', shift: false };
  if (ch === '\r') return undefined; // \r\n from a Windows clipboard: the \n presses Enter
  const cp = ch.codePointAt(0)!;
  if (/^[a-z]$/.test(ch)) return { keysym: cp, code: `Key${ch.toUpperCase()}`, shift: false };
  if (/^[A-Z]$/.test(ch)) return { keysym: cp, code: `Key${ch}`, shift: true };
  if (/^[0-9]$/.test(ch)) return { keysym: cp, code: `Digit${ch}`, shift: false };
  const d = SHIFTED_DIGITS.indexOf(ch);
  if (d >= 0) return { keysym: cp, code: `Digit${d}`, shift: true };
  const p = PUNCT[ch];
  if (p) return { keysym: cp, code: p[0], shift: p[1] };
  // Latin-1 keysyms are the code points; the rest of Unicode is 0x01000000 + code point.
  return { keysym: cp < 0x100 ? cp : 0x01000000 + cp, code: null, shift: false };
}

export interface KeySink { sendKey(keysym: number, code: string | null, down?: boolean): void }

export async function typeText(sink: KeySink, text: string, delayMs = 6): Promise<void> {
  for (const ch of text) {
    const k = strokeFor(ch);
    if (!k) continue;
    if (k.shift) sink.sendKey(XK_SHIFT_L, 'ShiftLeft', true);
    sink.sendKey(k.keysym, k.code, true);
    sink.sendKey(k.keysym, k.code, false);
    if (k.shift) sink.sendKey(XK_SHIFT_L, 'ShiftLeft', false);
    await new Promise((r) => setTimeout(r, delayMs));
  }
}
