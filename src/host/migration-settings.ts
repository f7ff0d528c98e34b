// Hyper-V's live migration settings of a host (Enable-/Disable-VMMigration, Set-VMHost
// -VirtualMachineMigration…): kept in DIR/migration.json, shown by Get-VMHost, read by Move-VM.
// The performance option picks how QEMU's stream is carried: TCPIP one stream; Compression
// multifd channels with zstd (CPU for bandwidth); SMB multifd channels without compression.
// SMB is Hyper-V's SMB 3 multichannel/Direct: parallel streams that cost no CPU for
// compression. Here it is the same parallel streams (each channel its own authenticated TLS
// connection between the QEMUs, as Compression's), not memory written through the shared directory: a file on the
// share would be written and read back whole, twice the bytes of a stream, and the
// destination could not load it until the source had finished writing.
// Pure but for load/save; the file also holds the migration networks (migration-networks.ts).
import { join } from 'node:path';
import { readJson, writeFileAtomic } from './atomic-file.ts';
import { invalid } from './invalid-argument.ts';
import { checkNetworks, type MigrationNetwork } from './migration-networks.ts';
import type { MigrationTuning } from '../qemu/index.ts';

export const PERFORMANCE_OPTIONS = ['TCPIP', 'Compression', 'SMB'] as const;
export type PerformanceOption = (typeof PERFORMANCE_OPTIONS)[number];
export const AUTHENTICATION_TYPES = ['CredSSP', 'Kerberos'] as const;
export type AuthenticationType = (typeof AUTHENTICATION_TYPES)[number];

export interface MigrationSettings {
  VirtualMachineMigrationEnabled: boolean;
  MaximumVirtualMachineMigrations: number;
  MaximumStorageMigrations: number;
  VirtualMachineMigrationPerformanceOption: PerformanceOption;
  /** Hyper-V's names; both mean here: a per-move ticket the destination issues to a caller holding its credential. */
  VirtualMachineMigrationAuthenticationType: AuthenticationType;
  UseAnyNetworkForMigration: boolean;
}

/** Hyper-V 2012 R2's defaults (migration off until enabled; 2 simultaneous moves). */
export const DEFAULT_MIGRATION_SETTINGS: MigrationSettings = {
  VirtualMachineMigrationEnabled: false,
  MaximumVirtualMachineMigrations: 2,
  MaximumStorageMigrations: 2,
  VirtualMachineMigrationPerformanceOption: 'TCPIP',
  VirtualMachineMigrationAuthenticationType: 'CredSSP',
  UseAnyNetworkForMigration: false,
};

const MAX_PARALLEL = 64;
const MULTIFD_CHANNELS = 4;

/** Set-VMHost's migration parameters applied to `current` (refusals name the parameter). */
export function applyMigrationSettings(current: MigrationSettings, patch: Partial<MigrationSettings>): MigrationSettings {
  const next = { ...current, ...Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) } as MigrationSettings;
  for (const k of ['MaximumVirtualMachineMigrations', 'MaximumStorageMigrations'] as const) {
    if (!Number.isInteger(next[k]) || next[k] < 1 || next[k] > MAX_PARALLEL) throw invalid(k, `must be a whole number from 1 to ${MAX_PARALLEL}`);
  }
  if (!PERFORMANCE_OPTIONS.includes(next.VirtualMachineMigrationPerformanceOption)) {
    throw invalid('VirtualMachineMigrationPerformanceOption', `must be one of ${PERFORMANCE_OPTIONS.join(', ')}`);
  }
  if (!AUTHENTICATION_TYPES.includes(next.VirtualMachineMigrationAuthenticationType)) {
    throw invalid('VirtualMachineMigrationAuthenticationType', `must be one of ${AUTHENTICATION_TYPES.join(', ')}`);
  }
  return next;
}

/**
 * Auto-converge's ceiling for every option. QEMU's throttle puts each vCPU to sleep for
 * pct / (1 − pct) × 10 ms after each 10 ms it runs: at its default ceiling of 99 % a throttled
 * guest stops for 990 ms at a time during the pre-copy, and its peers wait as long for an
 * answer. At 90 % the longest sleep is 90 ms, and the guest still gets only a tenth of its CPU
 * to dirty pages with (the dirtying moves of test/move-vm.test.ts and the bench converge). The
 * bench's trace (BENCHMARKS.md, branch blackout) still shows gaps of seconds in the pre-copy on
 * a loaded machine: the throttle is not their only cause.
 */
const MAX_CPU_THROTTLE = 90;

/**
 * Every move converges under a guest that dirties memory faster than the stream drains it:
 * auto-converge throttles its vCPUs, and XBZRLE sends a page dirtied again as its delta.
 * (Neither caused issue 11's move-back defect, which they were suspected of: pages QEMU 7.2
 * never re-sent under TCG, with any option — see TCG_RAM_PAD in qemu/command-line.ts.)
 */
const CONVERGE: MigrationTuning = { autoConverge: true, xbzrleCacheBytes: 64 * 1024 * 1024, maxCpuThrottle: MAX_CPU_THROTTLE };

/**
 * How QEMU migrates under a performance option (both ends must agree: the source sends the option
 * and, for Compression, its `channels` along). zstd stays at QEMU's level 1, its fastest: a
 * higher level costs several times the CPU for a few per cent fewer bytes.
 */
export function tuningFor(option: PerformanceOption, channels = MULTIFD_CHANNELS): MigrationTuning {
  switch (option) {
    case 'TCPIP': return { ...CONVERGE };
    // XBZRLE does nothing under multifd (QEMU 7.2 sends multifd pages whole): auto-converge only.
    case 'Compression': return { multifd: { channels, compression: 'zstd' }, autoConverge: true, maxCpuThrottle: MAX_CPU_THROTTLE };
    case 'SMB': return { multifd: { channels: MULTIFD_CHANNELS, compression: 'none' }, autoConverge: true, maxCpuThrottle: MAX_CPU_THROTTLE };
  }
}

/**
 * Compression's channels for the CPU the source has spare (cores, from `spare-cpu.ts`): each
 * channel is a QEMU thread compressing, so channels beyond the spare cores only take turns on
 * them — and take CPU from the guests. Hyper-V's Compression likewise uses spare CPU only; with
 * less than one core spare it still gets one channel (the move must go on).
 */
export function compressionChannels(spareCores: number): number {
  return Math.min(MULTIFD_CHANNELS, Math.max(1, Math.floor(spareCores)));
}

/**
 * Multifd options go over QEMU's own TLS straight between the two QEMUs (migration-tls.ts):
 * through the relay, the multifd channels' last bytes waited in its buffers with the guest
 * stopped. TCPIP's single stream keeps the relay (its blackout under dirtying was 21–22 ms).
 */
export function overQemuTls(option: PerformanceOption): boolean {
  return tuningFor(option).multifd !== undefined;
}

export function migrationSettingsPath(dataDir: string): string {
  return join(dataDir, 'migration.json');
}

/** The settings and the migration networks (migration-networks.ts), both kept in migration.json. */
export async function loadMigrationSettings(dataDir: string): Promise<{ settings: MigrationSettings; networks: MigrationNetwork[] }> {
  const { Networks, ...saved } = await readJson<Partial<MigrationSettings> & { Networks?: unknown }>(migrationSettingsPath(dataDir)).catch(() => ({ Networks: undefined }));
  return { settings: applyMigrationSettings(DEFAULT_MIGRATION_SETTINGS, saved), networks: checkNetworks(Networks) };
}

export async function saveMigrationSettings(dataDir: string, s: MigrationSettings, networks: MigrationNetwork[]): Promise<void> {
  await writeFileAtomic(migrationSettingsPath(dataDir), JSON.stringify({ ...s, Networks: networks }, null, 2) + '\n');
}
