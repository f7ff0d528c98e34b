// bin/vmhost-etcd-rejoin ENV_FILE: run by a cluster node's etcd service before etcd starts
// (packaging/systemd/etcd.service.d/vmhost-rejoin.conf: ExecStartPre, and EnvironmentFile=ENV_FILE
// so the settings written here reach etcd's own start). It reads etcd's settings from the
// environment Debian's etcd.service gives it (/etc/default/etcd: ETCD_NAME, ETCD_DATA_DIR,
// ETCD_INITIAL_ADVERTISE_PEER_URLS) and VMHOST_ETCD_ENDPOINTS, the other members' client URLs
// (comma-separated). Without VMHOST_ETCD_ENDPOINTS the machine is no vmhost cluster node: it
// writes an empty file and etcd starts as configured. See member-rejoin.ts.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { rejoinMember } from './member-rejoin.ts';

async function main(): Promise<void> {
  const envFile = process.argv[2];
  if (!envFile) throw new Error('usage: vmhost-etcd-rejoin ENV_FILE');
  await mkdir(dirname(envFile), { recursive: true });
  const endpoints = (process.env.VMHOST_ETCD_ENDPOINTS ?? '').split(',').map((x) => x.trim()).filter((x) => x !== '');
  if (endpoints.length === 0) {
    await writeFile(envFile, '');
    process.stdout.write('vmhost-etcd-rejoin: VMHOST_ETCD_ENDPOINTS is not set: etcd starts as configured\n');
    return;
  }
  const need = (k: string): string => {
    const v = process.env[k];
    if (!v) throw new Error(`${k} is not set (it belongs in /etc/default/etcd beside VMHOST_ETCD_ENDPOINTS)`);
    return v;
  };
  const r = await rejoinMember({ name: need('ETCD_NAME'), peerUrl: need('ETCD_INITIAL_ADVERTISE_PEER_URLS').split(',')[0]!, dataDir: need('ETCD_DATA_DIR'), endpoints });
  await writeFile(envFile, Object.entries(r.env).map(([k, v]) => `${k}=${v}\n`).join(''));
  process.stdout.write(`vmhost-etcd-rejoin: ${r.said}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`vmhost-etcd-rejoin: ${(e as Error).message}\n`);
  process.exit(1);
});
