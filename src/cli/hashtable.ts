// A PowerShell hashtable argument (`-CauPluginArguments @{Command='apt-get …'; Other="x"}`) as
// the CLI receives it: one string per item, each a `@{…}` literal or `Name=value`. Single-quoted
// values keep everything ('' is a quote); double-quoted ones take \" and \\; bare ones end at ';'.
import { VmhostError } from '../common/index.ts';

export function parseHashtable(param: string, items: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const body = item.trim().replace(/^@\{([\s\S]*)\}$/, '$1').trim();
    const re = /\s*([A-Za-z][A-Za-z0-9]*)\s*=\s*('(?:[^']|'')*'|"(?:[^"\\]|\\.)*"|(?!['"])[^;]*?)\s*(?:;|$)/y;
    let end = 0;
    while (end < body.length) {
      const m = re.exec(body);
      if (!m || re.lastIndex === end) throw new VmhostError('CLI_INVALID_PARAMETER', `-${param}: '${item}' is not @{Name='value'; …} or Name=value`, { param });
      const raw = m[2]!;
      out[m[1]!] = raw.startsWith('\'') ? raw.slice(1, -1).replace(/''/g, '\'') : raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(["\\])/g, '$1') : raw;
      end = re.lastIndex;
    }
  }
  return out;
}
