// A VM's network adapters (Get-/Add-/Remove-VMNetworkAdapter): which switch each is
// plugged into — changed live with Connect-/Disconnect-VMNetworkAdapter — its MAC, the
// addresses the guest reports, VLAN, guards and bandwidth. Adding and removing an adapter
// is hardware and needs the VM off; re-plugging does not.
import { useState } from 'react';
import { api, vmPath, type AdapterView, type ApiError, type SwitchView, type VmView } from '../api.ts';
import { whyNot } from '../actions.ts';
import { useApi } from '../live.ts';
import { href } from '../router.ts';
import { toast } from './Toasts.tsx';

const NOT_CONNECTED = '';

function vlanText(a: AdapterView): string {
  const v = a.VlanSetting;
  switch (v.OperationMode) {
    case 'Access': return `Access ${v.AccessVlanId}`;
    case 'Trunk': return `Trunk ${v.AllowedVlanIdList} (native ${v.NativeVlanId})`;
    case 'Private': return `${v.PrivateVlanMode} ${v.PrimaryVlanId}/${v.PrivateVlanMode === 'Promiscuous' ? v.SecondaryVlanIdList : v.SecondaryVlanId}`;
    default: return 'Untagged';
  }
}

/**
 * Hyper-V names every adapter "Network Adapter"; this page addresses adapters by name, so one it
 * adds gets the first free "Network Adapter", "Network Adapter 2", ….
 */
function freeAdapterName(adapters: AdapterView[]): string {
  const taken = new Set(adapters.map((a) => a.Name.toLowerCase()));
  for (let n = 1; ; n++) {
    const name = n === 1 ? 'Network Adapter' : `Network Adapter ${n}`;
    if (!taken.has(name.toLowerCase())) return name;
  }
}

const mac = (m: string) => m.match(/../g)?.join('-') ?? m;

export function VmNetworkTab({ vm, tick }: { vm: VmView; tick: number }) {
  const base = `${vmPath(vm.Id)}/network-adapters`;
  const { data: adapters, reload } = useApi<AdapterView[]>(base, [tick]);
  const { data: switches } = useApi<SwitchView[]>('/switches', [tick]);
  const [busy, setBusy] = useState(false);
  const addWhy = whyNot('AddNetworkAdapter', vm);
  const removeWhy = whyNot('RemoveNetworkAdapter', vm);
  const connectWhy = whyNot('ConnectNetworkAdapter', vm);

  const act = async (what: string, fn: () => Promise<unknown>) => {
    setBusy(true);
    try {
      await fn();
    } catch (e) {
      toast(`${what}: ${(e as ApiError).message}`, 'error');
    } finally {
      setBusy(false);
      reload();
    }
  };
  const plug = (a: AdapterView, sw: string) => act(`${a.Name}`, () => (sw === NOT_CONNECTED
    ? api('POST', `${base}/disconnect?Name=${encodeURIComponent(a.Name)}`)
    : api('POST', `${base}/connect?Name=${encodeURIComponent(a.Name)}`, { SwitchName: sw })));

  return (
    <div>
      <div className="toolbar">
        <button type="button" className="btn" disabled={addWhy !== undefined || busy} title={addWhy ?? 'Add a network adapter'}
          onClick={() => void act('Add network adapter', () => api('POST', base, { Name: freeAdapterName(adapters ?? []) }))}>Add network adapter</button>
        {addWhy && <span className="muted small">{addWhy}</span>}
        {switches?.length === 0 && <span className="muted small">No virtual switch yet: <a href={href('switches')}>create one</a> to connect adapters.</span>}
      </div>
      <table className="grid adapters">
        <thead><tr><th>Adapter</th><th>Virtual switch</th><th>MAC address</th><th>IP addresses</th><th>Status</th><th>VLAN</th><th>Guards</th><th /></tr></thead>
        <tbody>
          {adapters?.length === 0 && <tr><td colSpan={8} className="empty">This VM has no network adapter.</td></tr>}
          {(adapters ?? []).map((a) => (
            <tr key={a.Id} data-adapter={a.Name}>
              <td>{a.Name}{a.IsLegacy && <span className="muted small"> (legacy)</span>}</td>
              <td>
                <select aria-label={`Virtual switch of ${a.Name}`} value={a.SwitchName ?? NOT_CONNECTED} disabled={busy || connectWhy !== undefined} title={connectWhy} onChange={(e) => void plug(a, e.target.value)}>
                  <option value={NOT_CONNECTED}>Not connected</option>
                  {(switches ?? []).map((s) => <option key={s.Id} value={s.Name}>{s.Name} ({s.SwitchType})</option>)}
                </select>
              </td>
              <td className="mono small">{mac(a.MacAddress)}{a.DynamicMacAddressEnabled ? '' : ' (static)'}</td>
              <td className="mono small">{a.IPAddresses.join(', ') || <span className="muted">—</span>}</td>
              <td>{a.Status.join(', ') || <span className="muted">—</span>}</td>
              <td>{vlanText(a)}</td>
              <td className="small">MAC spoofing {a.MacAddressSpoofing} · DHCP guard {a.DhcpGuard} · Router guard {a.RouterGuard}{a.PortMirroringMode !== 'None' ? ` · Mirroring ${a.PortMirroringMode}` : ''}</td>
              <td>
                <button type="button" className="btn small danger-outline" disabled={removeWhy !== undefined || busy} title={removeWhy ?? `Remove ${a.Name}`}
                  onClick={() => void act(`Remove ${a.Name}`, () => api('DELETE', `${base}?Name=${encodeURIComponent(a.Name)}`))}>Remove</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
