// Which VM adapter is where, for the web console's VM networks page (GET
// /api/v1/host/network-virtualization/adapters): every adapter of this host's VMs in a virtual
// subnet, with its routing domain and what the lookup records say of it (by VSID and MAC): its
// customer addresses and the provider address they name, and whether that PA is this host's —
// false means the records still send its traffic elsewhere (a record not yet re-pointed after a
// move). Pure.
import { normalizeMacText, routingDomainOf, type HnvPolicy } from '../hnv/index.ts';

/** Get-VMNetworkAdapter's rows (VMName, Name, SwitchName, MacAddress, VirtualSubnetId, IPAddresses). */
type AdapterRow = Record<string, unknown>;

export function virtualSubnetAdapterRows(adapters: readonly AdapterRow[], policy: HnvPolicy): Record<string, unknown>[] {
  const local = new Set(policy.providerAddresses.map((p) => p.providerAddress));
  return adapters.filter((a) => typeof a.VirtualSubnetId === 'number' && a.VirtualSubnetId > 0).map((a) => {
    const vsid = a.VirtualSubnetId as number;
    const mac = normalizeMacText(String(a.MacAddress));
    const records = policy.lookupRecords.filter((r) => r.virtualSubnetId === vsid && r.macAddress === mac);
    const pas = [...new Set(records.map((r) => r.providerAddress))];
    return {
      VMName: a.VMName, Name: a.Name, SwitchName: a.SwitchName, MacAddress: mac, VirtualSubnetID: vsid,
      RoutingDomainID: routingDomainOf(policy, vsid) ?? null, IPAddresses: a.IPAddresses ?? [],
      CustomerAddresses: records.map((r) => r.customerAddress), ProviderAddresses: pas,
      RecordsPointHere: records.length > 0 && pas.every((p) => local.has(p)),
    };
  });
}
