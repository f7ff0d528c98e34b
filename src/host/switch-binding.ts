// Which host network adapter an External switch uses, decided from New-/Set-VMSwitch's
// parameters the way Hyper-V reads them: -NetAdapterName (or -NetAdapterInterfaceDescription)
// implies External; External without an adapter is an error; an adapter carries at most one
// External switch; -SwitchType Private/Internal on an External switch unbinds it.
import { VmhostError } from '../common/index.ts';
import type { SwitchConfig, SwitchType, UplinkSpec } from '../switch/index.ts';
import { invalid } from './invalid-argument.ts';
import { endpoint, type BindTarget, type HostNetAdapter, type NetAdapters } from './net-adapters.ts';

export interface BindingParams {
  SwitchType?: SwitchType;
  NetAdapterName?: string;
  NetAdapterInterfaceDescription?: string;
  AllowManagementOS?: boolean;
}

export interface Binding { readonly type: SwitchType; readonly adapter: BindTarget | null }

/** What a switch has now: `adapterName` may name an adapter that is gone (degraded), `linked` says whether its uplink is open. */
export interface CurrentBinding { readonly switchName: string; readonly type: SwitchType; readonly adapterName: string | null; readonly linked: boolean }

/** Name of the switch bound to an adapter, if any. */
export type BoundTo = (adapterName: string) => string | undefined;

/** New-VMSwitch. */
export function newBinding(adapters: NetAdapters, p: BindingParams, boundTo: BoundTo): Binding {
  const adapter = requestedAdapter(adapters, p, null);
  if (!adapter) {
    if (p.SwitchType === undefined) throw invalid('SwitchType', 'give -SwitchType Private or Internal, or -NetAdapterName for an External switch');
    return { type: p.SwitchType, adapter: null };
  }
  checkFree(adapter, boundTo, null);
  return { type: 'External', adapter };
}

/** Set-VMSwitch: the new binding, or undefined when the parameters leave it as it is. */
export function changedBinding(adapters: NetAdapters, current: CurrentBinding, p: BindingParams, boundTo: BoundTo): Binding | undefined {
  const adapter = requestedAdapter(adapters, p, current.type);
  if (adapter) {
    if (current.adapterName?.toLowerCase() === adapter.name.toLowerCase() && current.linked) return undefined;
    checkFree(adapter, boundTo, current.switchName);
    return { type: 'External', adapter };
  }
  if (p.SwitchType === undefined || p.SwitchType === current.type) return undefined;
  return { type: p.SwitchType, adapter: null };
}

/** The adapter the parameters name, if they name one; `currentType` lets Set-VMSwitch -SwitchType External stand alone on an External switch. */
function requestedAdapter(adapters: NetAdapters, p: BindingParams, currentType: SwitchType | null): BindTarget | undefined {
  if (p.NetAdapterName === undefined && p.NetAdapterInterfaceDescription === undefined) {
    if (p.SwitchType === 'External' && currentType !== 'External') {
      throw invalid('NetAdapterName', 'an External switch needs -NetAdapterName (or -NetAdapterInterfaceDescription): the host network adapter it uses');
    }
    return undefined;
  }
  if (p.SwitchType !== undefined && p.SwitchType !== 'External') throw invalid('SwitchType', `-NetAdapterName makes an External switch, not ${p.SwitchType}`);
  return adapters.pick(p.NetAdapterName, p.NetAdapterInterfaceDescription);
}

function checkFree(adapter: BindTarget, boundTo: BoundTo, self: string | null): void {
  const other = boundTo(adapter.name);
  if (other !== undefined && other.toLowerCase() !== self?.toLowerCase()) {
    throw new VmhostError('INVALID_STATE',
      `NetAdapterName: network adapter '${adapter.name}' is already bound to the External switch '${other}' (one External switch per adapter; Set-VMSwitch -Name '${other}' -SwitchType Private frees it)`,
      { param: 'NetAdapterName', adapter: adapter.name, switch: other });
  }
}

/** The switch file's config: an adapter-bound switch is saved without its endpoints. */
export function persistedConfig(config: SwitchConfig, netAdapterName: string | null): SwitchConfig {
  return netAdapterName === null ? config : withUplink(config, undefined);
}

/**
 * Daemon start: the config to recreate an adapter-bound switch with, or null when its adapter
 * is not declared any more (then `degraded` is the config without an uplink).
 */
export function restoredConfig(adapters: NetAdapters, config: SwitchConfig, netAdapterName: string): { config: SwitchConfig | null; degraded: SwitchConfig; adapter?: BindTarget } {
  const adapter = adapters.get(netAdapterName);
  const degraded = withUplink(config, undefined);
  return adapter ? { config: withUplink(config, adapter.uplink), degraded, adapter } : { config: null, degraded };
}

function withUplink(config: SwitchConfig, uplink: UplinkSpec | undefined): SwitchConfig {
  const { uplink: _old, ...settings } = config.settings;
  return { ...config, settings: uplink ? { ...settings, uplink } : settings };
}

/** Get-VMSwitch's adapter fields; Status is a vmhost addition (Degraded: the adapter is missing or could not be opened). */
export function bindingView(adapters: NetAdapters, type: SwitchType, netAdapterName: string | null, linked: boolean, hostNics: number): Record<string, unknown> {
  return {
    NetAdapterName: netAdapterName,
    NetAdapterInterfaceDescription: netAdapterName === null ? null : adapters.get(netAdapterName)?.description ?? null,
    AllowManagementOS: hostNics > 0,
    Status: type === 'External' && !linked ? 'Degraded' : 'OK',
  };
}

/** Get-NetAdapter: there is no link to sense on a UDP tunnel, so a declared adapter is Up unless disabled (Disable-NetAdapter). */
export function netAdapterView(a: HostNetAdapter, status: 'Up' | 'Disabled', switchName: string | undefined): Record<string, unknown> {
  return {
    Name: a.name, InterfaceDescription: a.description, Status: status,
    LocalEndpoint: endpoint(a.uplink.localAddress, a.uplink.localPort), RemoteEndpoint: endpoint(a.uplink.remoteAddress, a.uplink.remotePort),
    VMSwitchName: switchName ?? null,
  };
}
