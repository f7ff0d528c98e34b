// Test support for Hyper-V Replica: a Replica server switched on and authorizing one primary,
// and a running test guest that writes a pattern to a data disk, held between rounds. Record i
// is 64 KiB: "seq=i t=<guest time>" then random bytes, written with O_DIRECT at block
// (i × 37) mod 256 of the disk's first 16 MiB; the writer starts held. `release(k)` lets k more
// records go and holds it again (answering the count); `sha()` is the guest's own sha256 of
// the whole disk, the reference a replica's files must hash to.
import { join } from 'node:path';
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
