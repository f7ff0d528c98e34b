// -Json output. Decision (documented in index.ts): the shape follows what the cmdlet returns, not how
// many objects there happen to be — a cmdlet returning an array prints a JSON array even of one object
// (so `vmhost Get-VM web* -Json | jq '.[]'` never breaks), a cmdlet returning one object prints that
// object, and nothing (undefined, null, an empty array) prints nothing.
// Property names are PascalCase: a key starting with a lower-case letter gets its first letter upper-cased
// (`memoryAssigned` → `MemoryAssigned`); keys already PascalCase (`CPUUsage`, `VMId`) are kept.
// The values of a few properties are dictionaries keyed by data, not records: their keys (a
// switch's drop reasons `mac-spoofing`, port ids, the guest's KVP names) are kept as they are.
// A compatibility report's VM is a vm.json config that the admin edits and hands back to
// Import-VM -CompatibilityReport: it is written verbatim, in vm.json's own spelling.
// Pure; no dependencies.

const DICTIONARIES = new Set(['Drops', 'Ports', 'GuestKvp']);
const VERBATIM = new Set(['VM']);

export function pascalCaseKeys(v: unknown, keepKeys = false): unknown {
  if (Array.isArray(v)) return v.map((x) => pascalCaseKeys(x));
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, val] of Object.entries(v)) {
      if (val === undefined) continue;
      const key = keepKeys || k.length === 0 ? k : k[0]!.toUpperCase() + k.slice(1);
      out[key] = VERBATIM.has(key) && 'OperationType' in v ? val : pascalCaseKeys(val, !keepKeys && DICTIONARIES.has(key));
    }
    return out;
  }
  return v;
}

/** JSON text (2-space indented, newline-terminated) for a cmdlet's output; '' when there is nothing to print. */
export function formatJson(output: unknown): string {
  if (output === undefined || output === null) return '';
  if (Array.isArray(output) && output.length === 0) return '';
  return JSON.stringify(pascalCaseKeys(output), null, 2) + '\n';
}
