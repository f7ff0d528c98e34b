import { test } from 'node:test';
import assert from 'node:assert/strict';
import { durationSeconds, formatCell, formatTimeSpan } from './format-value.ts';
import { defaultView, formatList, formatRows, formatTable, type Column } from './table.ts';
import { vmView } from './views.ts';

const MiB = 1024 * 1024;
const vms = [
  { Name: 't1', State: 'Running', CPUUsage: 3, MemoryAssigned: 256 * MiB, Uptime: 312, Status: 'Operating normally' },
  { Name: 'web-frontend', State: 'Off', CPUUsage: 0, MemoryAssigned: 0, Uptime: 0, Status: 'Operating normally' },
  { Name: 'db', State: 'Running', CPUUsage: 12, MemoryAssigned: 2048 * MiB, Uptime: 93784, Status: 'Operating normally' },
];

test('formatTimeSpan: hh:mm:ss, d.hh:mm:ss, fractions dropped, negative', () => {
  assert.equal(formatTimeSpan(0), '00:00:00');
  assert.equal(formatTimeSpan(312), '00:05:12');
  assert.equal(formatTimeSpan(312.9), '00:05:12');
  assert.equal(formatTimeSpan(86399), '23:59:59');
  assert.equal(formatTimeSpan(86400 + 2 * 3600 + 3 * 60 + 4), '1.02:03:04');
  assert.equal(formatTimeSpan(12 * 86400), '12.00:00:00');
  assert.equal(formatTimeSpan(-5), '-00:00:05');
});

test('durationSeconds reads seconds and TimeSpan-like objects', () => {
  assert.equal(durationSeconds(5), 5);
  assert.equal(durationSeconds({ TotalSeconds: 7.5 }), 7.5);
  assert.equal(durationSeconds({ Ticks: 30_000_000 }), 3);
  assert.equal(durationSeconds('00:00:05'), undefined);
  assert.equal(durationSeconds(null), undefined);
});

test('formatCell follows PowerShell: True/False, {a, b}, empty for null', () => {
  assert.equal(formatCell(true), 'True');
  assert.equal(formatCell(false), 'False');
  assert.equal(formatCell(null), '');
  assert.equal(formatCell(undefined), '');
  assert.equal(formatCell(['a', 'b']), '{a, b}');
  assert.equal(formatCell([]), '{}');
  assert.equal(formatCell({ Name: 'QA', Id: 1 }), 'QA');
  assert.equal(formatCell('two\nlines'), 'two lines');
  assert.equal(formatCell(new Date('2026-01-02T03:04:05.678Z')), '2026-01-02 03:04:05Z');
});

test('Get-VM default table: headers, dashes, computed MemoryAssigned(M) and Uptime', () => {
  assert.equal(formatTable(vms, vmView.columns), [
    'Name         State   CPUUsage(%) MemoryAssigned(M) Uptime     Status',
    '----         -----   ----------- ----------------- ------     ------',
    't1           Running 3           256               00:05:12   Operating normally',
    'web-frontend Off     0           0                 00:00:00   Operating normally',
    'db           Running 12          2048              1.02:03:04 Operating normally',
    '',
  ].join('\n'));
});

test('no rows prints nothing', () => {
  assert.equal(formatTable([], vmView.columns), '');
  assert.equal(formatRows([], vmView), '');
  assert.equal(formatList([], vmView.columns), '');
});

test('right alignment pads on the left, header too', () => {
  const cols: Column[] = [{ label: 'N', value: 'n', align: 'right' }, { label: 'Name', value: 'name' }];
  assert.equal(formatTable([{ n: 5, name: 'a' }, { n: 123, name: 'b' }], cols), '  N Name\n  - ----\n  5 a\n123 b\n');
});

test('a table wider than the terminal shrinks its widest column and cuts cells with ...', () => {
  const rows = [{ Name: 'vm', Notes: 'x'.repeat(100) }];
  const out = formatTable(rows, [{ label: 'Name', value: 'Name' }, { label: 'Notes', value: 'Notes' }], 40);
  const lines = out.trimEnd().split('\n');
  for (const l of lines) assert.ok(l.length <= 40, `${l.length}: ${l}`);
  assert.equal(lines[2], `vm   ${'x'.repeat(32)}...`);
});

test('when shrinking is not enough, columns on the right are dropped', () => {
  const out = formatTable(vms, vmView.columns, 30);
  for (const l of out.trimEnd().split('\n')) assert.ok(l.length <= 30, l);
  assert.match(out, /^Name/);
  assert.doesNotMatch(out, /Status/);
});

test('the Get-VM table fits an 80-column terminal unchanged', () => {
  assert.equal(formatTable(vms, vmView.columns, 80), formatTable(vms, vmView.columns, 200));
});

test('Format-List: labels padded, objects separated by a blank line', () => {
  const cols: Column[] = [{ label: 'Name', value: 'Name' }, { label: 'MemoryStartup', value: 'MemoryStartup' }];
  assert.equal(formatList([{ Name: 'a', MemoryStartup: 1 }, { Name: 'b', MemoryStartup: 2 }], cols),
    'Name          : a\nMemoryStartup : 1\n\nName          : b\nMemoryStartup : 2\n');
});

test('default view: a table for few properties, a list for many', () => {
  assert.equal(defaultView([{ A: 1, B: 2 }]).layout, 'table');
  assert.equal(defaultView([vms[0]!]).layout, 'list');
  assert.deepEqual(defaultView([{ A: 1 }, { B: 2 }]).columns.map((c) => c.label), ['A', 'B']);
  assert.equal(formatRows([{ Path: 'd.vhdx', Size: 1 }], undefined), 'Path   Size\n----   ----\nd.vhdx 1\n');
});
