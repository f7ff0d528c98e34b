// Network virtualization on the host's switches: while the host has a provider address
// (New-NetVirtualizationProviderAddress), every External switch runs the NVGRE data path and
// distributed router (the forwarding extension vmhost.hnv, src/hnv/datapath.ts) with the
// host's current policy, pushed again on every policy change and whenever a switch is created
// or re-bound. The External switch's uplink is the provider network and carries all of the
// host's PAs. Without a provider address the extension is taken off: a VM port in a virtual
// subnet then reaches only ports of its subnet on this host (the switch's own rule).
import { VmhostError } from '../common/index.ts';
import { HNV_EXTENSION, type HnvExtensionConfig, type HnvPolicy } from '../hnv/index.ts';
import type { VirtualSwitch } from '../switch/index.ts';

/** Puts the data path on `sw` (or takes it off) for `policy`; a switch whose forwarding slot another extension holds keeps it, and the caller is told why. */
export function applyHnv(sw: VirtualSwitch, policy: HnvPolicy): string | undefined {
  const on = sw.settings.type === 'External' && policy.providerAddresses.length > 0;
  const has = sw.extensions().some((x) => x.name === HNV_EXTENSION);
  if (!on) { if (has) sw.removeExtension(HNV_EXTENSION); return undefined; }
  const config: HnvExtensionConfig = { policy };
  const c = config as unknown as Record<string, unknown>;
  try {
    if (has) sw.configureExtension(HNV_EXTENSION, c);
    else sw.addExtension(HNV_EXTENSION, { config: c });
  } catch (e) {
    if (e instanceof VmhostError && e.code === 'SWITCH_FORWARDING_EXTENSION') return `switch '${sw.name}' has another forwarding extension enabled: ${e.message}`;
    throw e;
  }
  return undefined;
}
