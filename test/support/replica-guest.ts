// Test support for Hyper-V Replica: a Replica server switched on and authorizing one primary,
// and a running test guest that writes a pattern to a data disk, held between rounds. Record i
// is 64 KiB: "seq=i t=<guest time>" then random bytes, written with O_DIRECT at block
// (i × 37) mod 256 of the disk's first 16 MiB; the writer starts held. `release(k)` lets k more
// records go and holds it again (answering the count); `sha()` is the guest's own sha256 of
// the whole disk, the reference a replica's files must hash to.
import { join } from 'node:path';
import { openDiskFile } from '../../src/storage/index.ts';
import { waitFor, type TestDaemon } from './daemon.ts';

export const RECORD = 64 * 1024;

/** Set-VMReplicationServer on `d` (certificate authentication on `port`) and an entry allowing `primary` into `d`'s folder `replicas`. */
export async function enableReplicaServer(d: TestDaemon, port: number, primary: string): Promise<string> {
  const replicas = join(d.dataDir, 'replicas');
  await d.ok('Set-VMReplicationServer', '-ReplicationEnabled', '$true', '-AllowedAuthenticationType', 'Certificate', '-CertificateAuthenticationPort', String(port),
    '-DefaultStorageLocation', join(d.dataDir, 'any'), '-ReplicationAllowedFromAnyServer', '$false');
  await d.ok('New-VMReplicationAuthorizationEntry', '-AllowedPrimaryServer', primary, '-ReplicaStorageLocation', replicas, '-TrustGroup', 'test');
  return replicas;
}

export interface PatternGuest {
  /** A shell script in the guest (its output, trimmed). */
  run(script: string): Promise<string>;
  /** The data disk's device name in the guest. */
  dev: string;
  /** The data disk's file on the host. */
  disk: string;
  /** Let `k` more records go, hold the writer again; the records written so far. */
  release(k: number): Promise<number>;
  /** The guest's sha256 of the whole data disk. */
  sha(): Promise<string>;
}

/** A gen 2 VM `name` on `d` with a 64 MiB data disk, booted, its pattern writer started and held. */
export async function startPatternGuest(d: TestDaemon, name: string): Promise<PatternGuest> {
  const run = async (script: string) => (await d.ok('Invoke-Command', '-VMName', name, '-ScriptBlock', script, '-TimeoutSeconds', '120')).trim();
  const disk = join(d.dataDir, `${name}-data.vhdx`);
  await d.ok('New-VHD', '-Path', disk, '-SizeBytes', '64MB', '-Dynamic', '-BlockSizeBytes', '1MB');
  await d.ok('New-VM', name, '-MemoryStartupBytes', '256MB', '-Generation', '2');
  await d.ok('Add-VMHardDiskDrive', '-VMName', name, '-Path', disk, '-ControllerType', 'SCSI');
  await d.ok('Start-VM', name);
  await waitFor(`${name} heartbeat`, 180_000, async () => (JSON.parse(await d.ok('Get-VM', name, '-Json')) as { Heartbeat: string }).Heartbeat === 'OK');
  const dev = await run('ls /sys/bus/scsi/devices/0:0:0:0/block/');
  const loop = 'touch /tmp/hold /tmp/detached; i=0; echo 0 > /tmp/n; while :; do '
    + 'if [ -e /tmp/hold ]; then echo $i > /tmp/held; while [ -e /tmp/hold ]; do sleep 0.1; done; rm -f /tmp/held; fi; '
    + 'printf "seq=%08d t=%s\\n" $i $(date +%s) > /tmp/rec; head -c 65536 /dev/urandom >> /tmp/rec; '
    + `dd if=/tmp/rec of=/dev/${dev} bs=65536 count=1 seek=$(( (i * 37) % 256 )) oflag=direct conv=notrunc 2>/dev/null; `
    + 'i=$((i+1)); echo $i > /tmp/n; done';
  await run(`setsid sh -c '${loop}' >/dev/null 2>&1 & while [ ! -f /tmp/held ]; do sleep 0.1; done; echo started`);
  return {
    run, dev, disk,
    release: async (k) => Number(await run('n0=$(cat /tmp/n); rm -f /tmp/hold; while [ "$(cat /tmp/n)" -lt $((n0 + ' + k + ')) ]; do sleep 0.1; done; '
      + 'touch /tmp/hold; while [ ! -e /tmp/held ]; do sleep 0.1; done; cat /tmp/n')),
    sha: async () => (await run(`dd if=/dev/${dev} bs=1M iflag=direct 2>/dev/null | sha256sum`)).split(/\s+/)[0]!,
  };
}

/** One MiB record per slot of the first 48 MiB: "cseq=%08d t=<guest uptime, s>" (apart from the pattern writer's "seq="). */
const SLOTS = 48;

/**
 * Start a writer in the guest at `mbps` MiB/s (rate-kept against the guest's uptime): record i
 * is 1 MiB ("cseq=i t=<uptime>" then random bytes) at MiB (i mod 48) of the data disk, written
 * with O_DIRECT one after the other, so the disk at any instant holds exactly records ≤ the
 * last one acknowledged. The random bytes are drawn once per writer (the same in every record,
 * still incompressible): /dev/urandom under TCG is slower than the rates asked. The count so
 * far is in /tmp/cn (there once this returns); `stopRateWriter` ends it.
 */
export async function startRateWriter(g: PatternGuest, mbps: number): Promise<void> {
  const cs = 'sed "s/ .*//; s/\\.//" /proc/uptime';
  const loop = `rm -f /tmp/cstop /tmp/cdone; head -c 1040000 /dev/urandom > /tmp/rnd; i=0; echo 0 > /tmp/cn; start=$(${cs}); while [ ! -e /tmp/cstop ]; do `
    + `now=$(${cs}); while [ $now -lt $((start + i * 100 / ${mbps})) ]; do sleep 0.01; now=$(${cs}); done; `
    + 'printf "cseq=%08d t=%s\\n" $i $(cut -d" " -f1 /proc/uptime) > /tmp/crec; cat /tmp/rnd >> /tmp/crec; '
    + `dd if=/tmp/crec of=/dev/${g.dev} bs=1M count=1 seek=$((i % ${SLOTS})) oflag=direct conv=sync 2>/dev/null; `
    + 'i=$((i+1)); echo $i > /tmp/cn; done; touch /tmp/cdone';
  // /tmp/cn goes first: a count read before this writer wrote its own must not be the last writer's (or none).
  await g.run(`rm -f /tmp/cn; setsid sh -c '${loop}' >/dev/null 2>&1 & while [ ! -e /tmp/cn ]; do sleep 0.1; done; echo started`);
}

/** End the rate writer after its current record: the records it wrote. */
export async function stopRateWriter(g: PatternGuest): Promise<number> {
  return Number(await g.run('touch /tmp/cstop; while [ ! -e /tmp/cdone ]; do sleep 0.1; done; cat /tmp/cn'));
}

export interface RateRecords {
  /** The newest record: its sequence number and guest time. */
  newest: { seq: number; t: number } | undefined;
  /** Slot → the sequence number found there (-1: none). */
  slots: number[];
}

/** The rate writer's records in a disk file (read through the VHDX engine; `afterCrash`: opened read-write, so its log is replayed as a restart would). */
export async function readRateRecords(path: string, afterCrash = false): Promise<RateRecords> {
  const disk = await openDiskFile(path, { readOnly: !afterCrash });
  try {
    const slots: number[] = [];
    let newest: RateRecords['newest'];
    const buf = new Uint8Array(512);
    for (let k = 0; k < SLOTS; k++) {
      await disk.read(buf, k << 20);
      const m = /^cseq=(\d{8}) t=([\d.]+)\n/.exec(Buffer.from(buf).toString('latin1'));
      slots.push(m ? Number(m[1]) : -1);
      if (m && (!newest || Number(m[1]) > newest.seq)) newest = { seq: Number(m[1]), t: Number(m[2]) };
    }
    return { newest, slots };
  } finally {
    await disk.close();
  }
}

/** Whether `r` is the disk exactly as it was once record `upTo` was written: every slot holds its newest record ≤ upTo. */
export function isStateAt(r: RateRecords, upTo: number): boolean {
  return r.slots.every((seq, k) => seq === (upTo < k ? -1 : upTo - ((upTo - k) % SLOTS)));
}
