import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isVmhostError } from '../common/index.ts';
import { dueRun, nextRun, validateSchedule, type CauSchedule } from './cau-schedule.ts';

const NOW = new Date('2026-12-07T15:00:00Z'); // a Monday
const iso = (d: Date): string => d.toISOString();
const sched = (s: Parameters<typeof validateSchedule>[0]): CauSchedule => validateSchedule(s, NOW);
/** The first `n` run times after `from`. */
function runs(s: CauSchedule, from: string, n: number): string[] {
  const out: string[] = [];
  for (let t = new Date(from); out.length < n;) { t = nextRun(s, t); out.push(iso(t)); }
  return out;
}
function refused(f: () => unknown, param: string): void {
  assert.throws(f, (e: unknown) => isVmhostError(e) && e.code === 'INVALID_ARGUMENT' && e.context.param === param);
}

describe('CAU schedule: validation', () => {
  test('days are named case-insensitively and kept in week order; weeks sorted and deduplicated; the default start is today 03:00 UTC', () => {
    assert.deepEqual(sched({ DaysOfWeek: ['friday', 'Tuesday'], WeeksOfMonth: [4, 2, 2] }),
      { DaysOfWeek: ['Tuesday', 'Friday'], WeeksOfMonth: [2, 4], StartDate: '2026-12-07T03:00:00.000Z' });
  });
  test('refused: no day, an unknown day, weeks outside 1–5, an empty week list, an interval outside 1–52, both narrowings, a date that is none', () => {
    refused(() => sched({}), 'DaysOfWeek');
    refused(() => sched({ DaysOfWeek: ['Caturday'] }), 'DaysOfWeek');
    refused(() => sched({ DaysOfWeek: ['Monday'], WeeksOfMonth: [0] }), 'WeeksOfMonth');
    refused(() => sched({ DaysOfWeek: ['Monday'], WeeksOfMonth: [6] }), 'WeeksOfMonth');
    refused(() => sched({ DaysOfWeek: ['Monday'], WeeksOfMonth: [] }), 'WeeksOfMonth');
    refused(() => sched({ DaysOfWeek: ['Monday'], IntervalWeeks: 0 }), 'IntervalWeeks');
    refused(() => sched({ DaysOfWeek: ['Monday'], IntervalWeeks: 53 }), 'IntervalWeeks');
    refused(() => sched({ DaysOfWeek: ['Monday'], IntervalWeeks: 1.5 }), 'IntervalWeeks');
    refused(() => sched({ DaysOfWeek: ['Monday'], IntervalWeeks: 2, WeeksOfMonth: [1] }), 'WeeksOfMonth');
    refused(() => sched({ DaysOfWeek: ['Monday'], StartDate: 'next tuesday' }), 'StartDate');
  });
});

describe('CAU schedule: run times', () => {
  test('every chosen weekday at StartDate\'s time of day, never before StartDate', () => {
    const s = sched({ DaysOfWeek: ['Monday', 'Thursday'], StartDate: '2026-12-08T02:30:00Z' });
    assert.deepEqual(runs(s, '2026-12-01T00:00:00Z', 4), ['2026-12-10T02:30:00.000Z', '2026-12-14T02:30:00.000Z', '2026-12-17T02:30:00.000Z', '2026-12-21T02:30:00.000Z']);
  });
  test('StartDate itself is a run time when its day is chosen; the run time is strictly after the instant asked', () => {
    const s = sched({ DaysOfWeek: ['Monday'], StartDate: '2026-12-07T15:00:10Z' });
    assert.equal(iso(nextRun(s, NOW)), '2026-12-07T15:00:10.000Z');
    assert.equal(iso(nextRun(s, new Date('2026-12-07T15:00:10Z'))), '2026-12-14T15:00:10.000Z');
  });
  test('WeeksOfMonth: the second and fourth Tuesday; 5 is the last one, also in a month with only four', () => {
    const s = sched({ DaysOfWeek: ['Tuesday'], WeeksOfMonth: [2, 4], StartDate: '2026-01-01T03:00:00Z' });
    assert.deepEqual(runs(s, '2026-01-01T00:00:00Z', 4), ['2026-01-13T03:00:00.000Z', '2026-01-27T03:00:00.000Z', '2026-02-10T03:00:00.000Z', '2026-02-24T03:00:00.000Z']);
    const last = sched({ DaysOfWeek: ['Tuesday'], WeeksOfMonth: [5], StartDate: '2026-01-01T03:00:00Z' });
    // January 2026's Tuesdays: 6, 13, 20, 27 (the 27th is the last); February's last is the 24th; March has five (the 31st).
    assert.deepEqual(runs(last, '2026-01-01T00:00:00Z', 3), ['2026-01-27T03:00:00.000Z', '2026-02-24T03:00:00.000Z', '2026-03-31T03:00:00.000Z']);
    // The fourth and the last on the same day make one run.
    const both = sched({ DaysOfWeek: ['Tuesday'], WeeksOfMonth: [4, 5], StartDate: '2026-02-01T03:00:00Z' });
    assert.deepEqual(runs(both, '2026-02-01T00:00:00Z', 3), ['2026-02-24T03:00:00.000Z', '2026-03-24T03:00:00.000Z', '2026-03-31T03:00:00.000Z']);
  });
  test('WeeksOfMonth across a year\'s end and a leap February', () => {
    const s = sched({ DaysOfWeek: ['Thursday'], WeeksOfMonth: [5], StartDate: '2027-12-01T00:00:00Z' });
    assert.deepEqual(runs(s, '2027-12-01T00:00:00Z', 3), ['2027-12-30T00:00:00.000Z', '2028-01-27T00:00:00.000Z', '2028-02-24T00:00:00.000Z']);
    const tue = sched({ DaysOfWeek: ['Tuesday'], WeeksOfMonth: [5], StartDate: '2028-02-01T00:00:00Z' });
    assert.equal(iso(nextRun(tue, new Date('2028-02-01T00:00:00Z'))), '2028-02-29T00:00:00.000Z', 'the 29th of a leap February is its fifth Tuesday');
  });
  test('IntervalWeeks: every other week, counted from StartDate\'s week (Sunday-based), across a month\'s end', () => {
    const s = sched({ DaysOfWeek: ['Sunday', 'Saturday'], IntervalWeeks: 2, StartDate: '2026-12-09T04:00:00Z' }); // a Wednesday
    // Weeks of Dec 6, Dec 20, Jan 3; not the Sunday Dec 6 itself (before StartDate), nor the week of Dec 13.
    assert.deepEqual(runs(s, '2026-12-01T00:00:00Z', 4), ['2026-12-12T04:00:00.000Z', '2026-12-20T04:00:00.000Z', '2026-12-26T04:00:00.000Z', '2027-01-03T04:00:00.000Z']);
  });
  test('IntervalWeeks 52 still finds its next run a year on', () => {
    const s = sched({ DaysOfWeek: ['Monday'], IntervalWeeks: 52, StartDate: '2026-12-07T03:00:00Z' });
    assert.deepEqual(runs(s, '2026-12-07T00:00:00Z', 2), ['2026-12-07T03:00:00.000Z', '2027-12-06T03:00:00.000Z']);
  });
});

describe('CAU schedule: the due run', () => {
  const s = validateSchedule({ DaysOfWeek: ['Monday', 'Wednesday'], StartDate: '2026-11-30T03:00:00Z' }, NOW);
  test('none before the first run time; the run time once reached', () => {
    assert.equal(dueRun(s, new Date('2026-11-29T00:00:00Z'), new Date('2026-11-30T02:59:59Z')), undefined);
    assert.equal(iso(dueRun(s, new Date('2026-11-29T00:00:00Z'), new Date('2026-11-30T03:00:00Z'))!), '2026-11-30T03:00:00.000Z');
  });
  test('a run time handled is not due again; the next one is', () => {
    assert.equal(dueRun(s, new Date('2026-11-30T03:00:00Z'), new Date('2026-12-01T12:00:00Z')), undefined);
    assert.equal(iso(dueRun(s, new Date('2026-11-30T03:00:00Z'), new Date('2026-12-02T03:00:01Z'))!), '2026-12-02T03:00:00.000Z');
  });
  test('run times missed while the cluster was down make one run: the latest', () => {
    assert.equal(iso(dueRun(s, new Date('2026-11-30T03:00:00Z'), NOW)!), '2026-12-07T03:00:00.000Z');
  });
});
