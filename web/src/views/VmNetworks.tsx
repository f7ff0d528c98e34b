// VM Networks: the host's network virtualization policy as Hyper-V's NetWNV cmdlets show it —
// provider addresses, routing domains with their virtual subnets, customer routes, lookup
// records, the in-daemon gateways — and which VM adapter is in which subnet, with the customer
// and provider addresses its lookup records give it (a record naming another host's PA is
// marked: the VM's traffic goes there). Read-only: the policy is pushed by the admin or an
// orchestrator through the cmdlets/REST, as SCVMM does for Hyper-V.
import { useApi, useInterval, useLiveTick } from '../live.ts';
import { PageHeader } from './common.tsx';

const BASE = '/host/network-virtualization';

interface ProviderAddress { ProviderAddress: string; InterfaceIndex: number; PrefixLength: number; VlanID: number; AddressState: string }
interface LookupRecord { CustomerAddress: string; VirtualSubnetID: number; MACAddress: string; ProviderAddress: string; CustomerID: string | null; Rule: string; VMName: string | null; Type: string }
interface CustomerRoute { RoutingDomainID: string; VirtualSubnetID: number; DestinationPrefix: string; NextHop: string; Metric: number }
interface Gateway {
  RoutingDomainID: string; VirtualSubnetID: number; CustomerAddress: string; Mode: string; ExternalAddress: string;
  ExternalSwitchName: string; DatacenterSwitchName: string; Status: string; Translations: number;
}
interface VsAdapter {
  VMName: string; Name: string; SwitchName: string | null; MacAddress: string; VirtualSubnetID: number; RoutingDomainID: string | null;
  IPAddresses: string[]; CustomerAddresses: string[]; ProviderAddresses: string[]; RecordsPointHere: boolean;
}

/** A routing domain as the policy names it: its subnets (from routes and records' CustomerID) and on-link prefixes. */
interface Domain { id: string; subnets: Map<number, string[]> }

function domains(routes: CustomerRoute[], records: LookupRecord[]): Domain[] {
  const byId = new Map<string, Domain>();
  const add = (id: string, vsid: number, prefix?: string) => {
    const d = byId.get(id) ?? { id, subnets: new Map<number, string[]>() };
    byId.set(id, d);
    const list = d.subnets.get(vsid) ?? [];
    if (prefix && !list.includes(prefix)) list.push(prefix);
    d.subnets.set(vsid, list);
  };
  for (const r of routes) add(r.RoutingDomainID, r.VirtualSubnetID, /^(0\.0\.0\.0|::)$/.test(r.NextHop) ? r.DestinationPrefix : undefined);
  for (const r of records) if (r.CustomerID) add(r.CustomerID, r.VirtualSubnetID);
  return [...byId.values()].sort((a, b) => a.id.localeCompare(b.id));
}

const Empty = ({ cols, text }: { cols: number; text: string }) => <tr><td colSpan={cols} className="empty">{text}</td></tr>;

export function VmNetworks() {
  const tick = useLiveTick();
  const every5 = useInterval(5000);
  const deps = [tick, every5];
  const pas = useApi<ProviderAddress[]>(`${BASE}/provider-addresses`, deps);
  const records = useApi<LookupRecord[]>(`${BASE}/lookup-records`, deps);
  const routes = useApi<CustomerRoute[]>(`${BASE}/customer-routes`, deps);
  const gateways = useApi<Gateway[]>(`${BASE}/gateways`, deps);
  const adapters = useApi<VsAdapter[]>(`${BASE}/adapters`, deps);
  const error = [pas, records, routes, gateways, adapters].find((x) => x.error && !x.data)?.error;
  if (error) return <p className="error-text" role="alert">{error.message}</p>;
  if (!pas.data || !records.data || !routes.data || !gateways.data || !adapters.data) return <p className="muted" aria-busy="true">Loading…</p>;
  const ds = domains(routes.data, records.data);
  return (
    <section aria-labelledby="vmn-title" className="vm-networks">
      <PageHeader title={<span id="vmn-title">VM Networks</span>} />
      <p className="muted small">Hyper-V Network Virtualization (NVGRE). The policy is set with the NetWNV cmdlets (New-NetVirtualizationLookupRecord and the rest) or their REST routes.</p>

      <h2 id="vmn-pa">Provider addresses</h2>
      <table className="grid" aria-labelledby="vmn-pa">
        <thead><tr><th>Provider address</th><th className="num">Prefix length</th><th className="num">Interface</th><th className="num">VLAN</th><th>State</th></tr></thead>
        <tbody>
          {pas.data.length === 0 && <Empty cols={5} text="No provider address: this host carries no virtual subnet traffic to other hosts." />}
          {pas.data.map((p) => (
            <tr key={p.ProviderAddress} data-pa={p.ProviderAddress}><td>{p.ProviderAddress}</td><td className="num">{p.PrefixLength}</td><td className="num">{p.InterfaceIndex}</td><td className="num">{p.VlanID || '—'}</td><td>{p.AddressState}</td></tr>
          ))}
        </tbody>
      </table>

      <h2 id="vmn-rd">Routing domains and virtual subnets</h2>
      <table className="grid" aria-labelledby="vmn-rd">
        <thead><tr><th>Routing domain</th><th className="num">Virtual subnet</th><th>On-link prefixes</th><th className="num">Lookup records</th><th>VM adapters here</th></tr></thead>
        <tbody>
          {ds.length === 0 && <Empty cols={5} text="No routing domain yet: add customer routes." />}
          {ds.flatMap((d) => [...d.subnets].sort(([a], [b]) => a - b).map(([vsid, prefixes]) => (
            <tr key={`${d.id}/${vsid}`} data-vsid={vsid}>
              <td className="mono small">{d.id}</td>
              <td className="num">{vsid}</td>
              <td>{prefixes.join(', ') || <span className="muted">—</span>}</td>
              <td className="num">{records.data!.filter((r) => r.VirtualSubnetID === vsid).length}</td>
              <td>{adapters.data!.filter((a) => a.VirtualSubnetID === vsid).map((a) => `${a.VMName} (${a.Name})`).join(', ') || <span className="muted">—</span>}</td>
            </tr>
          )))}
        </tbody>
      </table>

      <h2 id="vmn-ad">VM network adapters</h2>
      <table className="grid" aria-labelledby="vmn-ad">
        <thead><tr><th>VM</th><th>Adapter</th><th>Switch</th><th className="num">Virtual subnet</th><th>Customer addresses</th><th>Provider address</th><th>Guest reports</th></tr></thead>
        <tbody>
          {adapters.data.length === 0 && <Empty cols={7} text="No VM adapter of this host is in a virtual subnet (Set-VMNetworkAdapter -VirtualSubnetId)." />}
          {adapters.data.map((a) => (
            <tr key={`${a.VMName}/${a.Name}`} data-adapter={a.VMName}>
              <td>{a.VMName}</td><td>{a.Name}</td><td>{a.SwitchName ?? <span className="muted">not connected</span>}</td><td className="num">{a.VirtualSubnetID}</td>
              <td>{a.CustomerAddresses.join(', ') || <span className="error-text">no lookup record</span>}</td>
              <td className={a.CustomerAddresses.length > 0 && !a.RecordsPointHere ? 'error-text' : undefined}>
                {a.ProviderAddresses.join(', ') || '—'}{a.CustomerAddresses.length > 0 && !a.RecordsPointHere ? ' (another host)' : ''}
              </td>
              <td>{a.IPAddresses.join(', ') || <span className="muted">—</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>

      <h2 id="vmn-lr">Lookup records</h2>
      <table className="grid" aria-labelledby="vmn-lr">
        <thead><tr><th>Customer address</th><th className="num">Virtual subnet</th><th>MAC address</th><th>Provider address</th><th>VM</th><th>Type</th></tr></thead>
        <tbody>
          {records.data.length === 0 && <Empty cols={6} text="No lookup records." />}
          {records.data.map((r) => (
            <tr key={`${r.VirtualSubnetID}/${r.CustomerAddress}`} data-ca={r.CustomerAddress}>
              <td>{r.CustomerAddress}</td><td className="num">{r.VirtualSubnetID}</td><td className="mono">{r.MACAddress}</td><td>{r.ProviderAddress}</td><td>{r.VMName ?? '—'}</td><td>{r.Type}</td>
            </tr>
          ))}
        </tbody>
      </table>

      <h2 id="vmn-cr">Customer routes</h2>
      <table className="grid" aria-labelledby="vmn-cr">
        <thead><tr><th>Routing domain</th><th className="num">Virtual subnet</th><th>Destination prefix</th><th>Next hop</th><th className="num">Metric</th></tr></thead>
        <tbody>
          {routes.data.length === 0 && <Empty cols={5} text="No customer routes." />}
          {routes.data.map((r) => (
            <tr key={`${r.RoutingDomainID}/${r.VirtualSubnetID}/${r.DestinationPrefix}`}>
              <td className="mono small">{r.RoutingDomainID}</td><td className="num">{r.VirtualSubnetID}</td><td>{r.DestinationPrefix}</td><td>{/^(0\.0\.0\.0|::)$/.test(r.NextHop) ? 'on-link' : r.NextHop}</td><td className="num">{r.Metric}</td>
            </tr>
          ))}
        </tbody>
      </table>

      <h2 id="vmn-gw">Gateways</h2>
      <table className="grid" aria-labelledby="vmn-gw">
        <thead><tr><th>Routing domain</th><th>Mode</th><th>Customer address</th><th>External address</th><th>Switches</th><th>Status</th><th className="num">Translations</th></tr></thead>
        <tbody>
          {gateways.data.length === 0 && <Empty cols={7} text="No gateway (New-VmhostNetVirtualizationGateway)." />}
          {gateways.data.map((g) => (
            <tr key={g.RoutingDomainID} data-gateway={g.RoutingDomainID}>
              <td className="mono small">{g.RoutingDomainID}</td><td>{g.Mode}</td><td>{g.CustomerAddress} <span className="muted small">in {g.VirtualSubnetID}</span></td><td>{g.ExternalAddress}</td>
              <td>{g.ExternalSwitchName} → {g.DatacenterSwitchName}</td><td className={g.Status === 'Ok' ? undefined : 'error-text'}>{g.Status}</td><td className="num">{g.Translations}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
