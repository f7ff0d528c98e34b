// The self-updating CAU role's schedule (Add-CauClusterRole -DaysOfWeek -WeeksOfMonth
// -IntervalWeeks -StartDate), pure: which instants are the role's run times, and which one is due.
// All in UTC: the nodes of a cluster may sit in different time zones, the schedule is one.
// A run time is a chosen weekday at StartDate's time of day, on or after StartDate, further
// narrowed by one of:
// - WeeksOfMonth: the n-th such weekday of its month (1–4), 5 meaning the last one (the Hyper-V
//   GUI's "Last": a month with only four Tuesdays still has its "fifth-week" run on the fourth);
// - IntervalWeeks: every n-th week (weeks from Sunday), counted from the week of StartDate.
// Both at once is refused, as Hyper-V does.
import { VmhostError } from '../common/index.ts';

export const DAYS_OF_WEEK = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'] as const;
export type DayOfWeek = typeof DAYS_OF_WEEK[number];
export const MAX_INTERVAL_WEEKS = 52;

export interface CauSchedule {
  DaysOfWeek: DayOfWeek[];
  WeeksOfMonth?: number[];
  IntervalWeeks?: number;
  /** ISO 8601: the first instant a run may start at; its UTC time of day is every run's. */
  StartDate: string;
}

const DAY_MS = 86_400_000;
/** Longest gap between two run times: IntervalWeeks 52 plus a week; WeeksOfMonth at most two months. */
const SEARCH_DAYS = 7 * (MAX_INTERVAL_WEEKS + 1) + 7;

function invalid(param: string, msg: string): never {
  throw new VmhostError('INVALID_ARGUMENT', msg, { param });
}

/** The schedule checked and put in one form (days in week order, weeks sorted, StartDate as ISO). */
export function validateSchedule(s: { DaysOfWeek?: readonly string[]; WeeksOfMonth?: readonly number[]; IntervalWeeks?: number; StartDate?: string }, now: Date): CauSchedule {
  const days = (s.DaysOfWeek ?? []).map((d) => DAYS_OF_WEEK.find((x) => x.toLowerCase() === d.toLowerCase()) ?? invalid('DaysOfWeek', `-DaysOfWeek: '${d}' is not a day of the week (${DAYS_OF_WEEK.join(', ')})`));
  if (days.length === 0) invalid('DaysOfWeek', '-DaysOfWeek: give the day(s) of the week the role updates the cluster on');
  if (s.WeeksOfMonth !== undefined && s.IntervalWeeks !== undefined) invalid('WeeksOfMonth', 'Give -WeeksOfMonth or -IntervalWeeks, not both');
  const weeks = s.WeeksOfMonth?.map((w) => (Number.isInteger(w) && w >= 1 && w <= 5 ? w : invalid('WeeksOfMonth', `-WeeksOfMonth: ${w} is not 1–5 (5: the last such day of the month)`)));
  if (weeks !== undefined && weeks.length === 0) invalid('WeeksOfMonth', '-WeeksOfMonth: give at least one week (1–5)');
  if (s.IntervalWeeks !== undefined && !(Number.isInteger(s.IntervalWeeks) && s.IntervalWeeks >= 1 && s.IntervalWeeks <= MAX_INTERVAL_WEEKS)) {
    invalid('IntervalWeeks', `-IntervalWeeks: ${s.IntervalWeeks} is not 1–${MAX_INTERVAL_WEEKS}`);
  }
  // Hyper-V's default run time is 3:00 AM, from today on.
  const start = s.StartDate === undefined ? new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), 3)) : new Date(s.StartDate);
  if (Number.isNaN(start.getTime())) invalid('StartDate', `-StartDate: '${s.StartDate}' is not a date and time (ISO 8601, e.g. 2026-12-08T03:00:00Z)`);
  return {
    DaysOfWeek: DAYS_OF_WEEK.filter((d) => days.includes(d)),
    ...(weeks !== undefined ? { WeeksOfMonth: [...new Set(weeks)].sort((a, b) => a - b) } : {}),
    ...(s.IntervalWeeks !== undefined ? { IntervalWeeks: s.IntervalWeeks } : {}),
    StartDate: start.toISOString(),
  };
}

/** Midnight UTC of the day `t` falls on, in ms. */
const dayOf = (t: number): number => Math.floor(t / DAY_MS) * DAY_MS;
/** Midnight UTC of the Sunday that begins `t`'s week. */
const weekOf = (t: number): number => dayOf(t) - new Date(t).getUTCDay() * DAY_MS;

function dayQualifies(s: CauSchedule, day: number): boolean {
  const d = new Date(day);
  if (!s.DaysOfWeek.includes(DAYS_OF_WEEK[d.getUTCDay()]!)) return false;
  if (s.WeeksOfMonth !== undefined) {
    const date = d.getUTCDate();
    const daysInMonth = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
    const nth = Math.ceil(date / 7);
    const last = date + 7 > daysInMonth;
    return s.WeeksOfMonth.includes(nth) || (last && s.WeeksOfMonth.includes(5));
  }
  if (s.IntervalWeeks !== undefined) {
    const weeks = Math.round((weekOf(day) - weekOf(Date.parse(s.StartDate))) / (7 * DAY_MS));
    return weeks % s.IntervalWeeks === 0;
  }
  return true;
}

/** The schedule's first run time strictly after `after` (and not before StartDate). */
export function nextRun(s: CauSchedule, after: Date): Date {
  const start = Date.parse(s.StartDate);
  const timeOfDay = start - dayOf(start);
  let day = dayOf(Math.max(after.getTime(), start));
  for (let i = 0; i <= SEARCH_DAYS; i++, day += DAY_MS) {
    const t = day + timeOfDay;
    if (t > after.getTime() && t >= start && dayQualifies(s, day)) return new Date(t);
  }
  throw new VmhostError('INTERNAL', `The CAU schedule ${JSON.stringify(s)} has no run time within ${SEARCH_DAYS} days`, {});
}

/**
 * The run time that is due at `now`, if any: the latest one after `since` (the role's last handled
 * run time, or when its schedule was set or it was enabled) and not after `now`. Run times missed
 * meanwhile (the cluster was down) make one run, not one each.
 */
export function dueRun(s: CauSchedule, since: Date, now: Date): Date | undefined {
  let due: Date | undefined;
  for (let t = nextRun(s, since); t.getTime() <= now.getTime(); t = nextRun(s, t)) due = t;
  return due;
}
