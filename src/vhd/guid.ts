// GUIDs as [MS-VHDX] stores them: 16 bytes in the Windows mixed-endian layout (Data1..3
// little-endian, Data4 as bytes). In memory we use the canonical lowercase string form, so
// well-known GUIDs can be written exactly as the spec prints them.

export const ZERO_GUID = '00000000-0000-0000-0000-000000000000';

export function readGuid(b: Uint8Array, o: number): string {
  const h = (i: number) => b[o + i]!.toString(16).padStart(2, '0');
  return (
    h(3) + h(2) + h(1) + h(0) + '-' + h(5) + h(4) + '-' + h(7) + h(6) + '-' + h(8) + h(9) + '-' +
    h(10) + h(11) + h(12) + h(13) + h(14) + h(15)
  );
}

export function writeGuid(b: Uint8Array, o: number, g: string): void {
  const hex = g.replace(/[{}-]/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`not a GUID: ${g}`);
  const byte = (i: number) => parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  const order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
  for (let i = 0; i < 16; i++) b[o + order[i]!] = byte(i);
}

export function newGuid(): string {
  return globalThis.crypto.randomUUID();
}

export function isGuid(s: string): boolean {
  return /^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$/.test(s);
}

export function normGuid(s: string): string {
  return s.replace(/[{}]/g, '').toLowerCase();
}
