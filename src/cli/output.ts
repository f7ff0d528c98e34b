// Turns a cmdlet's return value into the text printed on stdout: JSON with -Json, else a table/list
// through the cmdlet's view. Pure; depends on json, table, format-value.
import { formatCell } from './format-value.ts';
import { formatJson } from './json.ts';
import { formatRows, type Row, type View } from './table.ts';

function isRow(v: unknown): v is Row {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date);
}

export function formatOutput(output: unknown, opts: { json: boolean; view?: View; width?: number }): string {
  if (opts.json) return formatJson(output);
  if (output === undefined || output === null) return '';
  const items = Array.isArray(output) ? output : [output];
  if (items.length === 0) return '';
  if (items.every(isRow)) return formatRows(items, opts.view, opts.width);
  return items.map((i) => formatCell(i) + '\n').join('');
}
