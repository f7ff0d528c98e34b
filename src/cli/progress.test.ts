import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProgressDisplay, barLine } from './progress.ts';

function terminal(isTTY: boolean, columns = 80): { text: () => string; isTTY: boolean; columns: number; write(c: string | Uint8Array): boolean } {
  let out = '';
  return { isTTY, columns, text: () => out, write: (c) => { out += String(c); return true; } };
}

test('a terminal: one line redrawn in place, the other activities counted, cleared when the last ends', () => {
  const t = terminal(true);
  const shown = new ProgressDisplay(t, false);
  const a = shown.begin('Start-VM \'a\'');
  a.update(10, 'Starting QEMU');
  const b = shown.begin('Start-VM \'b\'');
  b.update(50, 'Starting QEMU');
  a.update(60, 'Booting');
  a.done();
  b.update(100, 'Done');
  b.done();
  const draws = t.text().split('\r').filter(Boolean);
  assert.deepEqual(draws, [
    'Start-VM \'a\' [###...........................]  10% Starting QEMU\x1b[K',
    'Start-VM \'a\' [###...........................]  10% Starting QEMU (+1 more)\x1b[K',
    'Start-VM \'a\' [##################............]  60% Booting (+1 more)\x1b[K',
    'Start-VM \'b\' [###############...............]  50% Starting QEMU\x1b[K',
    'Start-VM \'b\' [##############################] 100% Done\x1b[K',
    '\x1b[K',
  ]);
  assert.ok(!t.text().includes('\n'), 'never a line of its own');
});

test('a terminal: other text first moves the bar away; an update after the end draws nothing', () => {
  const t = terminal(true);
  const shown = new ProgressDisplay(t, false);
  const a = shown.begin('Convert-VHD \'x\'');
  a.update(40, '');
  shown.clear();
  t.write('WARNING: something\n');
  shown.clear(); // nothing drawn now: writes nothing
  a.done();
  a.update(80, 'late');
  assert.equal(t.text(), '\rConvert-VHD \'x\' [############..................]  40%\x1b[K\r\x1b[KWARNING: something\n');
});

test('not a terminal: a plain line per 10 % step passed, none at 0 and none after the end', () => {
  const t = terminal(false);
  const shown = new ProgressDisplay(t, false);
  const a = shown.begin('Merge-VHD \'c.vhdx\'');
  for (const p of [0, 3, 9, 10, 12, 19, 35, 36, 99.9, 100]) a.update(p, `${p}`);
  a.done();
  a.update(100, 'again');
  assert.equal(t.text(), [
    'Merge-VHD \'c.vhdx\': 10% 10', 'Merge-VHD \'c.vhdx\': 35% 35', 'Merge-VHD \'c.vhdx\': 99% 99.9', 'Merge-VHD \'c.vhdx\': 100% 100', '',
  ].join('\n'));
});

test('SilentlyContinue: nothing at all', () => {
  const t = terminal(true);
  const a = new ProgressDisplay(t, true).begin('x');
  a.update(50, 'y');
  a.done();
  assert.equal(t.text(), '');
});

test('the line never wraps: cut to the width less one', () => {
  const line = barLine({ name: 'Remove-VMSnapshot \'a-very-long-vm-name\'', percent: 42, status: 'Merging the disks of checkpoint \'before the upgrade\' (disk.vhdx)' }, 0, 60);
  assert.equal(line.length, 59);
  assert.ok(line.startsWith('Remove-VMSnapshot \'a-very-long-vm-name\' [#############'));
});
