// Export-CauReport's formats, pure: Get-CauReport's objects as CSV (RFC 4180: a field with a comma,
// quote or line break quoted, quotes doubled; one row per node with -Detailed reports, one per run
// otherwise) or as an HTML page (every value escaped: a node's updater output is arbitrary text).
import type { CauReportView } from '../cluster/index.ts';

const RUN_COLUMNS = ['ClusterName', 'RunId', 'RunStartTime', 'RunDuration', 'ClusterResult', 'Plugin', 'NodesSucceeded', 'NodesFailed', 'ScheduledFor', 'Message'] as const;
const NODE_COLUMNS = ['Node', 'Status', 'Attempts', 'StartedAt', 'EndedAt', 'VersionBefore', 'VersionAfter', 'Message'] as const;
type NodeColumn = typeof NODE_COLUMNS[number];

const text = (v: unknown): string => (v === undefined || v === null ? '' : String(v));

function csvField(v: unknown): string {
  const s = text(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function reportsCsv(reports: readonly CauReportView[]): string {
  const detailed = reports.some((r) => r.NodeResults !== undefined);
  const header = [...RUN_COLUMNS, ...(detailed ? NODE_COLUMNS.map((c) => `Node${c === 'Node' ? '' : c}`) : [])];
  const rows = reports.flatMap((r) => {
    const run = RUN_COLUMNS.map((c) => r[c]);
    if (!detailed) return [run];
    const nodes = r.NodeResults ?? [];
    return nodes.length === 0 ? [run] : nodes.map((n) => [...run, ...NODE_COLUMNS.map((c: NodeColumn) => n[c])]);
  });
  return [header, ...rows].map((row) => row.map(csvField).join(',')).join('\r\n') + '\r\n';
}

export function escapeHtml(v: unknown): string {
  return text(v).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

function table(columns: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const head = columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((v) => `<td>${escapeHtml(v)}</td>`).join('')}</tr>`).join('\n');
  return `<table>\n<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

export function reportsHtml(reports: readonly CauReportView[]): string {
  const sections = reports.map((r) => {
    const runTable = table(['Property', 'Value'], RUN_COLUMNS.filter((c) => r[c] !== undefined).map((c) => [c, r[c]]));
    const nodes = r.NodeResults ? `\n${table(NODE_COLUMNS, r.NodeResults.map((n) => NODE_COLUMNS.map((c) => n[c])))}` : '';
    return `<section>\n<h2>Run ${escapeHtml(r.RunId)} — ${escapeHtml(r.ClusterResult)}</h2>\n${runTable}${nodes}\n</section>`;
  });
  const cluster = reports[0]?.ClusterName;
  return [
    '<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">',
    `<title>Cluster-Aware Updating report${cluster !== undefined ? ` — ${escapeHtml(cluster)}` : ''}</title>`,
    '<style>body{font-family:sans-serif}table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #999;padding:2px 6px;text-align:left;vertical-align:top;white-space:pre-wrap}</style>',
    '</head>', '<body>', `<h1>Cluster-Aware Updating report${cluster !== undefined ? ` — ${escapeHtml(cluster)}` : ''}</h1>`,
    ...(sections.length > 0 ? sections : ['<p>No updating runs.</p>']), '</body>', '</html>', '',
  ].join('\n');
}
