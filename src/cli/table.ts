// Format-Table and Format-List for people: columns per object type, widths fitted to the terminal.
// Pure (returns strings); depends on format-value.
import { formatCell } from './format-value.ts';

export type Row = Record<string, unknown>;

export interface Column {
  /** Header text, e.g. 'MemoryAssigned(M)'. */
  readonly label: string;
  /** A property name, or a function computing the cell from the object. */
  readonly value: string | ((row: Row) => unknown);
  /** Default 'left' (Hyper-V's own Get-VM table aligns numbers left too). */
  readonly align?: 'left' | 'right';
}

/** How one object type is shown: a table (default) or a list of name : value lines. */
export interface View {
  readonly columns: readonly Column[];
  readonly layout?: 'table' | 'list';
}

const ELLIPSIS = '...';
/** A column is not cut below this many characters (or its header, or its natural width if smaller). */
const MIN_CUT_WIDTH = 12;

interface Sized { col: Column; width: number; index: number }

/**
 * Shrinks the widest columns one character at a time down to their floor; if the table still does not
 * fit, drops the rightmost column and starts again from natural widths. A lone column is cut to fit.
 */
function fitColumns(natural: readonly Sized[], width: number): Sized[] {
  for (let n = natural.length; n >= 1; n--) {
    const cols = natural.slice(0, n).map((c) => ({ ...c }));
    const floor = (c: Sized) => Math.min(c.width, Math.max(c.col.label.length, MIN_CUT_WIDTH));
    const floors = cols.map(floor);
    let total = cols.reduce((s, c) => s + c.width, 0) + n - 1;
    while (total > width) {
      let widest = -1;
      cols.forEach((c, i) => { if (c.width > floors[i]! && (widest < 0 || c.width > cols[widest]!.width)) widest = i; });
      if (widest < 0) break;
      cols[widest]!.width--;
      total--;
    }
    if (total <= width) return cols;
    if (n === 1) return [{ ...cols[0]!, width: Math.max(1, width) }];
  }
  return [];
}

export function cellText(col: Column, row: Row): string {
  return formatCell(typeof col.value === 'string' ? row[col.value] : col.value(row));
}

/**
 * Renders rows as a PowerShell-style table: header, dashes, one line per row, columns separated by one
 * space, trailing spaces trimmed. Columns wider than the terminal are shrunk (widest first, cells cut
 * with '...'); if that is not enough, columns on the right are dropped. Returns '' for no rows.
 */
export function formatTable(rows: readonly Row[], columns: readonly Column[], width = 120): string {
  if (rows.length === 0 || columns.length === 0) return '';
  const cells = rows.map((r) => columns.map((c) => cellText(c, r)));
  const natural = columns.map((c, i) => ({ col: c, width: Math.max(c.label.length, ...cells.map((r) => r[i]!.length)), index: i }));
  const cols = fitColumns(natural, width);
  const fit = (text: string, w: number, align: 'left' | 'right' | undefined) => {
    const t = text.length > w ? (w > ELLIPSIS.length ? text.slice(0, w - ELLIPSIS.length) + ELLIPSIS : text.slice(0, w)) : text;
    return align === 'right' ? t.padStart(w) : t.padEnd(w);
  };
  const line = (texts: string[]) => texts.join(' ').trimEnd();
  const out = [
    line(cols.map((c) => fit(c.col.label, c.width, c.col.align))),
    line(cols.map((c) => fit('-'.repeat(c.col.label.length), c.width, c.col.align))),
    ...cells.map((r) => line(cols.map((c) => fit(r[c.index]!, c.width, c.col.align)))),
  ];
  return out.join('\n') + '\n';
}

/** Format-List: `Label : value` lines per object, labels padded to the longest, objects separated by a blank line. */
export function formatList(rows: readonly Row[], columns: readonly Column[]): string {
  if (rows.length === 0 || columns.length === 0) return '';
  const pad = Math.max(...columns.map((c) => c.label.length));
  return rows.map((r) => columns.map((c) => `${c.label.padEnd(pad)} : ${cellText(c, r)}`.trimEnd()).join('\n') + '\n').join('\n');
}

/**
 * A view for objects with no declared view: every property, shown as a table when there are at most
 * `maxTableColumns` of them (PowerShell's own rule is 4), else as a list.
 */
export function defaultView(rows: readonly Row[], maxTableColumns = 5): View {
  const names: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!names.includes(k)) names.push(k);
  return { columns: names.map((n) => ({ label: n, value: n })), layout: names.length <= maxTableColumns ? 'table' : 'list' };
}

/** Renders rows with a view (or the default view): the text to print, '' for nothing. */
export function formatRows(rows: readonly Row[], view: View | undefined, width = 120): string {
  const v = view ?? defaultView(rows);
  return v.layout === 'list' ? formatList(rows, v.columns) : formatTable(rows, v.columns, width);
}
