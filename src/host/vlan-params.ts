// Set-/Get-VMNetworkAdapterVlan's vocabulary, shared by VM adapters and the management OS's
// adapters: the cmdlet's mode switches turned into the switch's VlanSetting, and back into
// the properties Hyper-V's VMNetworkAdapterVlanSetting object shows.
import type { VlanSetting } from '../switch/index.ts';
import { invalid } from './invalid-argument.ts';

export interface SetVlanParams {
  Untagged?: boolean; Access?: boolean; Trunk?: boolean; Isolated?: boolean; Community?: boolean; Promiscuous?: boolean;
  VlanId?: number; AllowedVlanIdList?: number[]; NativeVlanId?: number; PrimaryVlanId?: number; SecondaryVlanId?: number; SecondaryVlanIdList?: number[];
}

export function vlanFrom(p: SetVlanParams): VlanSetting {
  const modes = (['Untagged', 'Access', 'Trunk', 'Isolated', 'Community', 'Promiscuous'] as const).filter((m) => p[m]);
  if (modes.length !== 1) throw invalid('VlanMode', `give exactly one of -Untagged, -Access, -Trunk, -Isolated, -Community, -Promiscuous${modes.length ? ` (got ${modes.join(', ')})` : ''}`);
  const need = <T>(v: T | undefined, param: string, mode: string): T => {
    if (v === undefined) throw invalid(param, `-${mode} needs -${param}`);
    return v;
  };
  switch (modes[0]!) {
    case 'Untagged': return { mode: 'Untagged' };
    case 'Access': return { mode: 'Access', vlanId: need(p.VlanId, 'VlanId', 'Access') };
    case 'Trunk': return { mode: 'Trunk', allowedVlanIdList: need(p.AllowedVlanIdList, 'AllowedVlanIdList', 'Trunk'), nativeVlanId: need(p.NativeVlanId, 'NativeVlanId', 'Trunk') };
    case 'Isolated': return { mode: 'Isolated', primaryVlanId: need(p.PrimaryVlanId, 'PrimaryVlanId', 'Isolated'), secondaryVlanId: need(p.SecondaryVlanId, 'SecondaryVlanId', 'Isolated') };
    case 'Community': return { mode: 'Community', primaryVlanId: need(p.PrimaryVlanId, 'PrimaryVlanId', 'Community'), secondaryVlanId: need(p.SecondaryVlanId, 'SecondaryVlanId', 'Community') };
    case 'Promiscuous': return { mode: 'Promiscuous', primaryVlanId: need(p.PrimaryVlanId, 'PrimaryVlanId', 'Promiscuous'), secondaryVlanIdList: need(p.SecondaryVlanIdList, 'SecondaryVlanIdList', 'Promiscuous') };
  }
}

/** The mode properties of Get-VMNetworkAdapterVlan's output (the caller adds whose adapter it is). */
export function vlanFields(v: VlanSetting): Record<string, unknown> {
  const pvlan = v.mode === 'Isolated' || v.mode === 'Community' || v.mode === 'Promiscuous';
  return {
    OperationMode: pvlan ? 'Private' : v.mode,
    AccessVlanId: v.mode === 'Access' ? v.vlanId : 0,
    NativeVlanId: v.mode === 'Trunk' ? v.nativeVlanId : 0,
    AllowedVlanIdList: v.mode === 'Trunk' ? v.allowedVlanIdList.join(',') : '',
    PrivateVlanMode: pvlan ? v.mode : null,
    PrimaryVlanId: 'primaryVlanId' in v ? v.primaryVlanId : 0,
    SecondaryVlanId: v.mode === 'Isolated' || v.mode === 'Community' ? v.secondaryVlanId : 0,
    SecondaryVlanIdList: v.mode === 'Promiscuous' ? v.secondaryVlanIdList.join(',') : '',
  };
}
