// Network virtualization policy that follows a VM on Move-VM. Hyper-V leaves this to the
// orchestrator (SCVMM re-points the lookup records on every host); with no orchestrator, the two
// hosts of a move do it for their own policy: the destination, at the commit and before the
// guest runs again, re-points the VM's records to its own provider address, and tells the
// source that address in its prepare answer; the source re-points its records to it as soon
// as the commit has answered. The VM keeps its customer addresses, VSIDs and MACs; only the PA
// changes. Hosts other than these two keep their records until the admin or orchestrator
// pushes the change (New-/Remove-NetVirtualizationLookupRecord), as on Hyper-V. The NVGRE data
// path follows each policy change at once (hnv-datapath.ts: tables recompiled), and the
// destination announces the VM's MACs after the resume (vm-move-in.ts).
import type { VirtualSubnetAdapter } from '../hnv/index.ts';
import type { EventLevel } from './events.ts';
import type { HnvStore } from './hnv-store.ts';
import type { VmConfig } from './vm-config.ts';
import type { VmEntry } from './vm-entry.ts';

/** The VM's adapters in a virtual subnet: what its lookup records are found by. */
export function virtualSubnetAdapters(config: VmConfig): VirtualSubnetAdapter[] {
  return config.networkAdapters.flatMap((a) => (a.virtualSubnetId ? [{ virtualSubnetId: a.virtualSubnetId, macAddress: a.mac }] : []));
}

/** What a move asks of the host's policy on either side. */
export interface HnvMove {
  /** This host's provider address (where a VM moving here will be found); undefined without one. */
  providerAddress(): string | undefined;
  /** The VM now lives at `pa`: its records here say so. Never throws (the move has committed): a failure is an event. */
  follow(e: VmEntry, pa: string): Promise<void>;
}

export function hnvMove(store: HnvStore, event: (level: EventLevel, code: string, message: string, e?: VmEntry) => void): HnvMove {
  return {
    providerAddress: () => store.sourceProviderAddress(),
    follow: async (e, pa) => {
      const adapters = virtualSubnetAdapters(e.config);
      try {
        const n = await store.followMove(adapters, pa);
        if (n > 0) event('Information', 'HNV_RECORDS_MOVED', `${n} lookup record(s) of VM '${e.config.name}' now name provider address ${pa}`, e);
      } catch (err) {
        event('Error', 'HNV_RECORDS_NOT_MOVED', `The lookup records of VM '${e.config.name}' still name its old provider address (re-point them to ${pa}): ${(err as Error).message}`, e);
      }
    },
  };
}
