// Every cmdlet the CLI knows, in one registry.
import { CmdletRegistry } from '../registry.ts';
import * as lifecycle from './vm-lifecycle.ts';
import * as settings from './vm-settings.ts';
import * as guest from './guest.ts';
import * as host from './host.ts';
import * as vhd from './vhd.ts';
import * as storage from './vm-storage.ts';
import * as network from './vm-network.ts';
import * as netAdapter from './net-adapter.ts';
import * as lbfo from './net-lbfo.ts';
import * as capture from './switch-capture.ts';
import * as firmware from './vm-firmware.ts';
import * as controllers from './vm-controllers.ts';
import * as credentials from './host-credential.ts';
import * as users from './host-users.ts';
import * as checkpoints from './vm-checkpoints.ts';
import * as transfer from './vm-export.ts';
import * as moveStorage from './vm-move-storage.ts';
import * as metering from './vm-metering.ts';
import * as pools from './resource-pools.ts';
import * as move from './vm-move.ts';
import * as migrationNetworks from './migration-network.ts';
import * as netVirtualization from './net-virtualization.ts';
import * as isolation from './vm-network-isolation.ts';
import * as backup from './vm-backup.ts';
import * as cluster from './cluster.ts';
import * as clusterQuorum from './cluster-quorum.ts';
import * as clusterOps from './cluster-ops.ts';
import * as clusterCsv from './cluster-csv.ts';
import * as cau from './cau.ts';
import * as replication from './vm-replication.ts';

export function cmdletRegistry(): CmdletRegistry {
  const r = new CmdletRegistry();
  for (const mod of [lifecycle, settings, guest, host, vhd, storage, network, netAdapter, lbfo, capture, firmware, controllers, credentials, users, checkpoints, transfer, moveStorage, metering, pools, move, migrationNetworks, netVirtualization, isolation, cluster, clusterOps, clusterQuorum, clusterCsv, cau, backup, replication]) {
    for (const def of Object.values(mod)) r.add(def);
  }
  return r;
}
