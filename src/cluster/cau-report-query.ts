// Get-CauReport's selection of finished runs, pure: oldest first, those that started within
// -StartDate … -EndDate (either end open when not given; both ends included), and -Last the newest
// of those. A date is ISO 8601 (a day alone is midnight UTC, as Date.parse reads it).
import { VmhostError } from '../common/index.ts';
import type { CauRunRecord } from './cau-plan.ts';

export interface CauReportSelection { Last?: boolean; StartDate?: string; EndDate?: string }

function instant(param: 'StartDate' | 'EndDate', v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new VmhostError('INVALID_ARGUMENT', `Get-CauReport -${param} '${v}' is not a date (ISO 8601: 2026-12-07 or 2026-12-07T18:00:00Z)`, { param });
  return t;
}

export function selectReports(runs: readonly CauRunRecord[], q: CauReportSelection): CauRunRecord[] {
  const from = instant('StartDate', q.StartDate);
  const to = instant('EndDate', q.EndDate);
  if (from !== undefined && to !== undefined && from > to) {
    throw new VmhostError('INVALID_ARGUMENT', `Get-CauReport: -StartDate ${q.StartDate} is after -EndDate ${q.EndDate}`, { param: 'EndDate' });
  }
  const within = [...runs].sort((a, b) => a.StartedAt.localeCompare(b.StartedAt)).filter((r) => {
    const t = Date.parse(r.StartedAt);
    return (from === undefined || t >= from) && (to === undefined || t <= to);
  });
  return q.Last ? within.slice(-1) : within;
}
