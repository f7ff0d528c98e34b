// Set-VMHost -ResourceMeteringSaveInterval: how often metering.json (and the resource pools'
// counts) is written, kept in DIR/metering-settings.json and shown by Get-VMHost as a TimeSpan.
// Hyper-V accepts 1 to 24 hours and saves hourly by default, because its counts live in the
// VM's configuration. Ours are a small file of their own written atomically, so the default is
// 10 s (a daemon killed with SIGKILL loses at most that much) and anything from 1 s to 24 h is
// accepted. Pure but for load/save.
import { join } from 'node:path';
import { readJson, writeFileAtomic } from './atomic-file.ts';
import { invalid } from './invalid-argument.ts';
import { timeSpanText } from './metering-state.ts';

export const DEFAULT_SAVE_INTERVAL_SECONDS = 10;
const MAX_SAVE_INTERVAL_SECONDS = 24 * 3600;

export interface MeteringSettings { saveIntervalSeconds: number }

/** A TimeSpan as PowerShell reads one: [d.]hh:mm[:ss], or a whole number of seconds. */
export function parseTimeSpan(text: string, param: string): number {
  const m = /^(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?$/.exec(text.trim());
  if (m) {
    const [d, h, mi, s] = [m[1], m[2], m[3], m[4]].map((x) => Number(x ?? 0)) as [number, number, number, number];
    if (h < 24 && mi < 60 && s < 60) return ((d * 24 + h) * 60 + mi) * 60 + s;
  } else if (/^\d+$/.test(text.trim())) {
    return Number(text.trim());
  }
  throw invalid(param, `'${text}' is not a time span (hh:mm:ss, d.hh:mm:ss or seconds)`);
}

export function checkSaveInterval(seconds: number): number {
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_SAVE_INTERVAL_SECONDS) {
    throw invalid('ResourceMeteringSaveInterval', 'must be from 00:00:01 to 24:00:00');
  }
  return seconds;
}

/** What Get-VMHost shows. */
export function meteringSettingsView(s: MeteringSettings): { ResourceMeteringSaveInterval: string; ResourceMeteringSaveIntervalSeconds: number } {
  return { ResourceMeteringSaveInterval: timeSpanText(s.saveIntervalSeconds), ResourceMeteringSaveIntervalSeconds: s.saveIntervalSeconds };
}

const file = (dataDir: string) => join(dataDir, 'metering-settings.json');

export async function loadMeteringSettings(dataDir: string): Promise<MeteringSettings> {
  const saved = await readJson<Partial<MeteringSettings>>(file(dataDir)).catch(() => ({} as Partial<MeteringSettings>));
  try {
    return { saveIntervalSeconds: checkSaveInterval(saved.saveIntervalSeconds ?? DEFAULT_SAVE_INTERVAL_SECONDS) };
  } catch {
    return { saveIntervalSeconds: DEFAULT_SAVE_INTERVAL_SECONDS }; // a hand-edited file with a bad value: the default, as for a missing one
  }
}

export async function saveMeteringSettings(dataDir: string, s: MeteringSettings): Promise<void> {
  await writeFileAtomic(file(dataDir), JSON.stringify(s, null, 2) + '\n');
}
