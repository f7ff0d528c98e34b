// How much CPU this host has spare right now, in cores: the idle share of every CPU over a short
// sample (the kernel's counters, os.cpus()), a TCG guest's busy vCPU counting as busy. Read when a
// Compression move starts (migration-settings.ts `compressionChannels`).
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

const SAMPLE_MS = 200;

const totals = () => cpus().reduce((t, c) => {
  const x = c.times;
  return { idle: t.idle + x.idle, all: t.all + x.user + x.nice + x.sys + x.idle + x.irq };
}, { idle: 0, all: 0 });

export async function spareCores(sampleMs = SAMPLE_MS): Promise<number> {
  const a = totals();
  await sleep(sampleMs);
  const b = totals();
  const all = b.all - a.all;
  return all > 0 ? (cpus().length * (b.idle - a.idle)) / all : 0;
}
