// Networking cmdlets: virtual switches and their extensions, VM network adapters (connect,
// guards, bandwidth, mirroring), VLANs and ACLs. They speak the daemon's network routes.
import { VmhostError } from '../../common/index.ts';
import { defineCmdlet } from '../cmdlet.ts';
import type { ApiClient } from '../client.ts';
import { poolSwitches, setPool } from './pool-member.ts';
import { clientFor, oneOrMany, selectVms, vmNameMandatory } from './vm-select.ts';
import { HOST_ADAPTERS, addHostNic, getHostNics, getHostNicVlans, hostNicView, managementOs, removeHostNic, setHostNicVlan } from './host-nic.ts';

const vmName = { ...vmNameMandatory, aliases: [] } as const;
/** -VMName where a cmdlet also has the -ManagementOS set (host-nic.ts). */
const vmNameOrHost = { ...vmName, sets: ['VM'], mandatory: ['VM'] } as const;
const onOff = { type: 'enum', values: ['On', 'Off'] } as const;
const bits = { type: 'size', min: 0, help: 'bits per second; 0 = none' } as const;
const ethernetPool = { type: 'string', sets: ['VM'], help: 'The Ethernet resource pool the adapter is billed in (Primordial: none)' } as const;
const vlanId = { type: 'int', min: 1, max: 4094 } as const;
const cols = (...c: string[]) => ({ columns: c.map((x) => ({ label: x, value: x })) });

const switchView = cols('Name', 'SwitchType', 'NetAdapterInterfaceDescription', 'Status', 'Ports', 'ConnectedPorts', 'Notes');
// New-/Set-VMSwitch: -NetAdapterName (or -NetAdapterInterfaceDescription) makes the switch External on that host adapter (Get-NetAdapter).
const switchType = { type: 'enum', values: ['Private', 'Internal', 'External'] } as const;
const binding = {
  NetAdapterName: { type: 'string', help: 'Host network adapter (Get-NetAdapter) for an External switch' },
  NetAdapterInterfaceDescription: { type: 'string', help: 'The host adapter by its InterfaceDescription' },
  AllowManagementOS: { type: 'bool', help: '$true: the host gets a vNIC (a tap) on the switch; default $false for External' },
} as const;
const adapterView = {
  columns: [
    { label: 'Name', value: 'Name' }, { label: 'VMName', value: 'VMName' }, { label: 'SwitchName', value: 'SwitchName' },
    { label: 'MacAddress', value: 'MacAddress' }, { label: 'Status', value: (r: Record<string, unknown>) => (r.Status as string[]).join(',') },
    { label: 'IPAddresses', value: (r: Record<string, unknown>) => `{${(r.IPAddresses as string[]).join(', ')}}` },
  ],
};
const vlanView = cols('VMName', 'ParentAdapter', 'OperationMode', 'AccessVlanId', 'NativeVlanId', 'AllowedVlanIdList', 'PrivateVlanMode', 'PrimaryVlanId', 'SecondaryVlanId', 'SecondaryVlanIdList');

function q(name: string | undefined): string {
  return name === undefined ? '' : `?${new URLSearchParams({ Name: name })}`;
}

/** One request per key; results concatenated. */
async function collect<K, T>(keys: K[], fn: (k: K) => Promise<T | T[] | undefined>): Promise<T[]> {
  const out: T[] = [];
  for (const k of keys) {
    const r = await fn(k);
    if (Array.isArray(r)) out.push(...r);
    else if (r !== undefined) out.push(r);
  }
  return out;
}

/** One request per selected VM. */
async function eachVm<T>(api: ApiClient, names: string[], fn: (id: string) => Promise<T | T[] | undefined>): Promise<T[]> {
  return collect((await selectVms(api, names)).map((vm) => vm.Id), fn);
}

const enc = encodeURIComponent;

/**
 * Port policy cmdlets act on each selected VM's adapters or, with -ManagementOS, on the host's:
 * the same routes under another base path, one request per target, results concatenated.
 */
function eachAdapterOwner<T>(api: ApiClient, parameterSet: string | undefined, vmNames: string[] | undefined, fn: (base: string) => Promise<T | T[] | undefined>): Promise<T[]> {
  if (parameterSet === 'ManagementOS') return collect([HOST_ADAPTERS], fn);
  return eachVm(api, vmNames!, (id) => fn(`/vms/${id}/network-adapters`));
}

// ---- switches ----

export const newVmSwitch = defineCmdlet({
  name: 'New-VMSwitch',
  synopsis: 'Create a virtual switch: -SwitchType Private or Internal, or -NetAdapterName NAME for an External one on that host adapter',
  params: {
    Name: { type: 'string', mandatory: true }, SwitchType: switchType, ...binding,
    MinimumBandwidthMode: { type: 'enum', values: ['Absolute', 'Weight'] }, Notes: { type: 'string' },
  },
  positional: ['Name'],
  view: switchView,
  async run(args, ctx) {
    return clientFor(ctx).call('POST', '/switches', {
      Name: args.Name, SwitchType: args.SwitchType, NetAdapterName: args.NetAdapterName, NetAdapterInterfaceDescription: args.NetAdapterInterfaceDescription,
      AllowManagementOS: args.AllowManagementOS, MinimumBandwidthMode: args.MinimumBandwidthMode, Notes: args.Notes,
    });
  },
});

export const getVmSwitch = defineCmdlet({
  name: 'Get-VMSwitch', synopsis: 'List virtual switches (with -Json: drop counters per reason and per port)',
  params: { Name: { type: 'string' }, ResourcePoolName: { type: 'string', help: 'Only the switches of this Ethernet resource pool' } }, positional: ['Name'], view: switchView,
  async run(args, ctx) {
    const api = clientFor(ctx);
    if (args.ResourcePoolName !== undefined) {
      const inPool = new Set((await poolSwitches(api, args.ResourcePoolName)).map((n) => n.toLowerCase()));
      return (await api.call<{ Name: string }[]>('GET', '/switches')).filter((w) => inPool.has(w.Name.toLowerCase()) && (args.Name === undefined || w.Name.toLowerCase() === args.Name.toLowerCase()));
    }
    return args.Name === undefined ? api.call('GET', '/switches') : api.call('GET', `/switches/${enc(args.Name)}`);
  },
});

export const setVmSwitch = defineCmdlet({
  name: 'Set-VMSwitch', synopsis: 'Change a switch\'s host adapter (-NetAdapterName), type (-SwitchType Private unbinds it), notes or default-flow minimum bandwidth',
  params: {
    Name: { type: 'string', mandatory: true }, SwitchType: switchType, ...binding, Notes: { type: 'string' },
    DefaultFlowMinimumBandwidthWeight: { type: 'int', min: 0, max: 100 }, DefaultFlowMinimumBandwidthAbsolute: bits,
  },
  positional: ['Name'], view: switchView,
  async run(args, ctx) {
    const r = await clientFor(ctx).call('PATCH', `/switches/${enc(args.Name)}`, {
      SwitchType: args.SwitchType, NetAdapterName: args.NetAdapterName, NetAdapterInterfaceDescription: args.NetAdapterInterfaceDescription,
      AllowManagementOS: args.AllowManagementOS, Notes: args.Notes, DefaultFlowMinimumBandwidthWeight: args.DefaultFlowMinimumBandwidthWeight, DefaultFlowMinimumBandwidthAbsolute: args.DefaultFlowMinimumBandwidthAbsolute,
    });
    return args.PassThru ? r : undefined;
  },
});

export const removeVmSwitch = defineCmdlet({
  name: 'Remove-VMSwitch', synopsis: 'Delete a switch (refused while adapters are connected, unless -Force disconnects them); with -ResourcePoolName: take it out of those Ethernet pools instead',
  params: { Name: { type: 'string', mandatory: true }, ResourcePoolName: { type: 'string', array: true }, Force: { type: 'switch' } }, positional: ['Name', 'ResourcePoolName'],
  async run(args, ctx) {
    const api = clientFor(ctx);
    if (args.ResourcePoolName !== undefined) await api.call('DELETE', `/switches/${enc(args.Name)}/resource-pools?${new URLSearchParams({ ResourcePoolName: args.ResourcePoolName.join(',') })}`);
    else await api.call('DELETE', `/switches/${enc(args.Name)}?force=${args.Force ? 'true' : 'false'}`);
    return undefined;
  },
});

const extView = cols('Name', 'ExtensionType', 'Enabled', 'SwitchName');

export const getVmSwitchExtension = defineCmdlet({
  name: 'Get-VMSwitchExtension', synopsis: 'List the switch extensions installed and whether each is enabled on the switch',
  params: { VMSwitchName: { type: 'string', mandatory: true, aliases: ['SwitchName'] }, Name: { type: 'string' } }, positional: ['VMSwitchName'], view: extView,
  async run(args, ctx) {
    const all = await clientFor(ctx).call<Record<string, unknown>[]>('GET', `/switches/${enc(args.VMSwitchName)}/extensions`);
    return args.Name === undefined ? all : all.filter((x) => String(x.Name).toLowerCase() === args.Name!.toLowerCase());
  },
});

function extensionToggle(verb: 'Enable' | 'Disable') {
  return defineCmdlet({
    name: `${verb}-VMSwitchExtension`, synopsis: `${verb} a switch extension on a switch`,
    params: { VMSwitchName: { type: 'string', mandatory: true, aliases: ['SwitchName'] }, Name: { type: 'string', mandatory: true } },
    positional: ['Name', 'VMSwitchName'], view: extView,
    async run(args, ctx) {
      const r = await clientFor(ctx).call('PATCH', `/switches/${enc(args.VMSwitchName)}/extensions`, { Name: args.Name, Enabled: verb === 'Enable' });
      return args.PassThru ? r : undefined;
    },
  });
}

export const enableVmSwitchExtension = extensionToggle('Enable');
export const disableVmSwitchExtension = extensionToggle('Disable');

// ---- adapters ----

export const addVmNetworkAdapter = defineCmdlet({
  name: 'Add-VMNetworkAdapter', synopsis: 'Add a network adapter to a VM (VM off), optionally connected to a switch; -ManagementOS: a host vNIC on an Internal switch',
  params: {
    VMName: vmNameOrHost, ManagementOS: managementOs, Name: { type: 'string', mandatory: ['ManagementOS'] }, SwitchName: { type: 'string', mandatory: ['ManagementOS'] },
    StaticMacAddress: { type: 'string', sets: ['VM'] }, IsLegacy: { type: 'switch', sets: ['VM'] }, ResourcePoolName: ethernetPool,
  },
  positional: ['VMName'], defaultSet: 'VM', view: adapterView, setViews: { ManagementOS: hostNicView },
  async run(args, ctx) {
    const api = clientFor(ctx);
    if (ctx.parameterSet === 'ManagementOS') {
      const nic = await addHostNic(api, args.Name!, args.SwitchName!);
      return args.PassThru ? nic : undefined;
    }
    const out = await eachVm(api, args.VMName!, async (id) => {
      const nic = await api.call<{ Id: string }>('POST', `/vms/${id}/network-adapters`, {
        Name: args.Name, SwitchName: args.SwitchName, StaticMacAddress: args.StaticMacAddress, IsLegacy: args.IsLegacy || undefined,
      });
      if (args.ResourcePoolName !== undefined) await setPool(api, id, 'Ethernet', args.ResourcePoolName, nic.Id);
      return nic;
    });
    return args.PassThru ? out : undefined;
  },
});

export const getVmNetworkAdapter = defineCmdlet({
  name: 'Get-VMNetworkAdapter',
  synopsis: 'List a VM\'s network adapters: switch, MAC, IP addresses (from the guest agent), status, guards; -ManagementOS: the host\'s vNICs (Linux interface, its addresses)',
  params: { VMName: vmNameOrHost, ManagementOS: managementOs, Name: { type: 'string' }, SwitchName: { type: 'string', sets: ['ManagementOS'] } },
  positional: ['VMName'], defaultSet: 'VM', view: adapterView, setViews: { ManagementOS: hostNicView },
  async run(args, ctx) {
    const api = clientFor(ctx);
    if (ctx.parameterSet === 'ManagementOS') return getHostNics(api, args.Name, args.SwitchName);
    return oneOrMany(await eachVm(api, args.VMName!, (id) => api.call<unknown[]>('GET', `/vms/${id}/network-adapters${q(args.Name)}`)), args.VMName);
  },
});

export const removeVmNetworkAdapter = defineCmdlet({
  name: 'Remove-VMNetworkAdapter', synopsis: 'Remove network adapters from a VM (VM off); -Name picks one by name; -ManagementOS -Name: a host vNIC and its interface',
  params: { VMName: vmNameOrHost, ManagementOS: managementOs, Name: { type: 'string', mandatory: ['ManagementOS'] }, SwitchName: { type: 'string', sets: ['ManagementOS'] } },
  positional: ['VMName'], defaultSet: 'VM',
  async run(args, ctx) {
    const api = clientFor(ctx);
    if (ctx.parameterSet === 'ManagementOS') { await removeHostNic(api, args.Name!, args.SwitchName); return undefined; }
    await eachVm(api, args.VMName!, (id) => api.call('DELETE', `/vms/${id}/network-adapters${q(args.Name)}`));
    return undefined;
  },
});

export const connectVmNetworkAdapter = defineCmdlet({
  name: 'Connect-VMNetworkAdapter', synopsis: 'Connect network adapters to a switch (also while the VM runs)',
  params: {
    VMName: vmName, SwitchName: { type: 'string', sets: ['SwitchName'], mandatory: ['SwitchName'] }, Name: { type: 'string' },
    UseAutomaticConnection: { type: 'switch', sets: ['UseAutomaticConnection'], mandatory: ['UseAutomaticConnection'], help: 'To a switch of the adapter\'s Ethernet resource pool (Add-VMSwitch)' },
  },
  positional: ['VMName'], defaultSet: 'SwitchName', view: adapterView,
  async run(args, ctx) {
    const api = clientFor(ctx);
    const connect = (id: string, name: string | undefined, switchName: string) => api.call<unknown[]>('POST', `/vms/${id}/network-adapters/connect${q(name)}`, { SwitchName: switchName });
    const out = await eachVm(api, args.VMName, async (id) => {
      if (!args.UseAutomaticConnection) return connect(id, args.Name, args.SwitchName!);
      const nics = await api.call<{ Name: string; PoolName: string }[]>('GET', `/vms/${id}/network-adapters${q(args.Name)}`);
      const done = [];
      for (const n of nics) {
        const [first] = n.PoolName === 'Primordial' ? [] : await poolSwitches(api, n.PoolName);
        if (!first) throw new VmhostError('INVALID_STATE', `Connect-VMNetworkAdapter -UseAutomaticConnection: adapter '${n.Name}' is in no Ethernet resource pool with a switch (Set-VMNetworkAdapter -ResourcePoolName, Add-VMSwitch)`, { param: 'UseAutomaticConnection' });
        done.push(...await connect(id, n.Name, first));
      }
      return done;
    });
    return args.PassThru ? out : undefined;
  },
});

export const disconnectVmNetworkAdapter = defineCmdlet({
  name: 'Disconnect-VMNetworkAdapter', synopsis: 'Disconnect network adapters from their switch (also while the VM runs)',
  params: { VMName: vmName, Name: { type: 'string' } }, positional: ['VMName'], view: adapterView,
  async run(args, ctx) {
    const api = clientFor(ctx);
    const out = await eachVm(api, args.VMName, (id) => api.call<unknown[]>('POST', `/vms/${id}/network-adapters/disconnect${q(args.Name)}`));
    return args.PassThru ? out : undefined;
  },
});

export const setVmNetworkAdapter = defineCmdlet({
  name: 'Set-VMNetworkAdapter', synopsis: 'Guards, port mirroring and bandwidth of network adapters (applies at once); -ManagementOS: the host\'s vNICs',
  params: {
    VMName: vmNameOrHost, ManagementOS: managementOs, Name: { type: 'string' }, MacAddressSpoofing: onOff, DhcpGuard: onOff, RouterGuard: onOff, ArpGuard: onOff,
    PortMirroring: { type: 'enum', values: ['None', 'Source', 'Destination'] },
    MaximumBandwidth: bits, MinimumBandwidthAbsolute: bits, MinimumBandwidthWeight: { type: 'int', min: 0, max: 100 },
    VirtualSubnetId: { type: 'int', min: 0, max: 16_777_214, sets: ['VM'], help: 'Network virtualization subnet (4096-16777214; 0 = none): the port joins it; with a provider address the External switch carries it in NVGRE' },
    ResourcePoolName: ethernetPool,
  },
  positional: ['VMName'], defaultSet: 'VM', view: adapterView, setViews: { ManagementOS: hostNicView },
  async run(args, ctx) {
    const api = clientFor(ctx);
    const policy = {
      MacAddressSpoofing: args.MacAddressSpoofing, DhcpGuard: args.DhcpGuard, RouterGuard: args.RouterGuard, ArpGuard: args.ArpGuard,
      PortMirroring: args.PortMirroring, MaximumBandwidth: args.MaximumBandwidth, MinimumBandwidthAbsolute: args.MinimumBandwidthAbsolute,
      MinimumBandwidthWeight: args.MinimumBandwidthWeight, VirtualSubnetId: args.VirtualSubnetId,
    };
    const pool = args.ResourcePoolName;
    const changes = Object.values(policy).some((v) => v !== undefined);
    const out = await eachAdapterOwner(api, ctx.parameterSet, args.VMName, async (base) => {
      const nics = changes ? await api.call<{ Id: string; VMId: string }[]>('PATCH', `${base}${q(args.Name)}`, policy) : await api.call<{ Id: string; VMId: string }[]>('GET', `${base}${q(args.Name)}`);
      if (pool !== undefined) for (const n of nics) await setPool(api, n.VMId, 'Ethernet', pool, n.Id);
      return nics;
    });
    return args.PassThru ? out : undefined;
  },
});

// ---- VLANs ----

const adapterName = { type: 'string' } as const;

export const setVmNetworkAdapterVlan = defineCmdlet({
  name: 'Set-VMNetworkAdapterVlan', synopsis: 'VLAN mode of network adapters: -Untagged, -Access -VlanId, -Trunk, or a private VLAN (applies at once)',
  params: {
    VMName: vmNameOrHost, ManagementOS: managementOs, VMNetworkAdapterName: { type: 'string' },
    Untagged: { type: 'switch' }, Access: { type: 'switch' }, Trunk: { type: 'switch' },
    Isolated: { type: 'switch' }, Community: { type: 'switch' }, Promiscuous: { type: 'switch' },
    VlanId: vlanId, AllowedVlanIdList: { ...vlanId, array: true }, NativeVlanId: { type: 'int', min: 0, max: 4094 },
    PrimaryVlanId: vlanId, SecondaryVlanId: vlanId, SecondaryVlanIdList: { ...vlanId, array: true },
  },
  positional: ['VMName'], defaultSet: 'VM', view: vlanView,
  async run(args, ctx) {
    const api = clientFor(ctx);
    const sw = (b: boolean) => b || undefined;
    const body = {
      Untagged: sw(args.Untagged), Access: sw(args.Access), Trunk: sw(args.Trunk), Isolated: sw(args.Isolated), Community: sw(args.Community), Promiscuous: sw(args.Promiscuous),
      VlanId: args.VlanId, AllowedVlanIdList: args.AllowedVlanIdList, NativeVlanId: args.NativeVlanId ?? (args.Trunk ? 0 : undefined),
      PrimaryVlanId: args.PrimaryVlanId, SecondaryVlanId: args.SecondaryVlanId, SecondaryVlanIdList: args.SecondaryVlanIdList,
    };
    const out = ctx.parameterSet === 'ManagementOS'
      ? await setHostNicVlan(api, args.VMNetworkAdapterName, body)
      : await eachVm(api, args.VMName!, (id) => api.call<unknown[]>('PUT', `/vms/${id}/network-adapters/vlan${q(args.VMNetworkAdapterName)}`, body));
    return args.PassThru ? out : undefined;
  },
});

export const getVmNetworkAdapterVlan = defineCmdlet({
  name: 'Get-VMNetworkAdapterVlan', synopsis: 'Show the VLAN mode of network adapters',
  params: { VMName: vmNameOrHost, ManagementOS: managementOs, VMNetworkAdapterName: { type: 'string' } }, positional: ['VMName'], defaultSet: 'VM', view: vlanView,
  async run(args, ctx) {
    const api = clientFor(ctx);
    if (ctx.parameterSet === 'ManagementOS') return getHostNicVlans(api, args.VMNetworkAdapterName);
    return oneOrMany(await eachVm(api, args.VMName!, (id) => api.call<unknown[]>('GET', `/vms/${id}/network-adapters/vlan${q(args.VMNetworkAdapterName)}`)), args.VMName);
  },
});

// ---- ACLs ----

const direction = { type: 'enum', values: ['Inbound', 'Outbound'] } as const;
const extAclView = cols('VMName', 'ParentAdapter', 'Direction', 'Action', 'Weight', 'LocalIPAddress', 'RemoteIPAddress', 'Protocol', 'LocalPort', 'RemotePort', 'Stateful');

export const addVmNetworkAdapterExtendedAcl = defineCmdlet({
  name: 'Add-VMNetworkAdapterExtendedAcl', synopsis: 'Add an extended port ACL (weights order the rules; -Stateful creates return flows)',
  params: {
    VMName: vmNameOrHost, ManagementOS: managementOs, VMNetworkAdapterName: adapterName, Direction: { ...direction, mandatory: true }, Action: { type: 'enum', values: ['Allow', 'Deny'], mandatory: true },
    Weight: { type: 'int', min: 0, mandatory: true }, LocalIPAddress: { type: 'string' }, RemoteIPAddress: { type: 'string' }, Protocol: { type: 'string' },
    LocalPort: { type: 'string' }, RemotePort: { type: 'string' }, Stateful: { type: 'bool' }, IdleSessionTimeout: { type: 'int', min: 0 },
  },
  positional: ['VMName'], defaultSet: 'VM', view: extAclView,
  async run(args, ctx) {
    const api = clientFor(ctx);
    const out = await eachAdapterOwner(api, ctx.parameterSet, args.VMName, (base) => api.call<unknown[]>('POST', `${base}/extended-acls${q(args.VMNetworkAdapterName)}`, {
      Direction: args.Direction, Action: args.Action, Weight: args.Weight, LocalIPAddress: args.LocalIPAddress, RemoteIPAddress: args.RemoteIPAddress,
      Protocol: args.Protocol, LocalPort: args.LocalPort, RemotePort: args.RemotePort, Stateful: args.Stateful, IdleSessionTimeout: args.IdleSessionTimeout,
    }));
    return args.PassThru ? out : undefined;
  },
});

export const getVmNetworkAdapterExtendedAcl = defineCmdlet({
  name: 'Get-VMNetworkAdapterExtendedAcl', synopsis: 'List extended port ACLs',
  params: { VMName: vmNameOrHost, ManagementOS: managementOs, VMNetworkAdapterName: adapterName }, positional: ['VMName'], defaultSet: 'VM', view: extAclView,
  async run(args, ctx) {
    const api = clientFor(ctx);
    return oneOrMany(await eachAdapterOwner(api, ctx.parameterSet, args.VMName, (base) => api.call<unknown[]>('GET', `${base}/extended-acls${q(args.VMNetworkAdapterName)}`)), args.VMName ?? (args.VMNetworkAdapterName ? [args.VMNetworkAdapterName] : undefined));
  },
});

export const removeVmNetworkAdapterExtendedAcl = defineCmdlet({
  name: 'Remove-VMNetworkAdapterExtendedAcl', synopsis: 'Remove the extended ACL with this direction and weight',
  params: { VMName: vmNameOrHost, ManagementOS: managementOs, VMNetworkAdapterName: adapterName, Direction: { ...direction, mandatory: true }, Weight: { type: 'int', min: 0, mandatory: true } },
  positional: ['VMName'], defaultSet: 'VM',
  async run(args, ctx) {
    const api = clientFor(ctx);
    const p = new URLSearchParams({ Direction: args.Direction, Weight: String(args.Weight), ...(args.VMNetworkAdapterName ? { Name: args.VMNetworkAdapterName } : {}) });
    await eachAdapterOwner(api, ctx.parameterSet, args.VMName, (base) => api.call('DELETE', `${base}/extended-acls?${p}`));
    return undefined;
  },
});

const aclParams = {
  VMName: vmNameOrHost, ManagementOS: managementOs, VMNetworkAdapterName: adapterName,
  Direction: { type: 'enum', values: ['Inbound', 'Outbound', 'Both'], mandatory: true },
  Action: { type: 'enum', values: ['Allow', 'Deny', 'Meter'], mandatory: true },
  RemoteIPAddress: { type: 'string' }, RemoteMacAddress: { type: 'string' },
} as const;
const aclView = cols('VMName', 'ParentAdapter', 'Direction', 'Action', 'RemoteIPAddress', 'RemoteMacAddress', 'MeteredInboundBytes', 'MeteredOutboundBytes');

export const addVmNetworkAdapterAcl = defineCmdlet({
  name: 'Add-VMNetworkAdapterAcl', synopsis: 'Add a port ACL by remote address: Allow, Deny, or Meter (traffic counters)',
  params: aclParams, positional: ['VMName'], defaultSet: 'VM', view: aclView,
  async run(args, ctx) {
    const api = clientFor(ctx);
    const out = await eachAdapterOwner(api, ctx.parameterSet, args.VMName, (base) => api.call<unknown[]>('POST', `${base}/acls${q(args.VMNetworkAdapterName)}`, {
      Direction: args.Direction, Action: args.Action, RemoteIPAddress: args.RemoteIPAddress, RemoteMacAddress: args.RemoteMacAddress,
    }));
    return args.PassThru ? out : undefined;
  },
});

export const getVmNetworkAdapterAcl = defineCmdlet({
  name: 'Get-VMNetworkAdapterAcl', synopsis: 'List port ACLs; Meter rules show their byte counters',
  params: { VMName: vmNameOrHost, ManagementOS: managementOs, VMNetworkAdapterName: adapterName }, positional: ['VMName'], defaultSet: 'VM', view: aclView,
  async run(args, ctx) {
    const api = clientFor(ctx);
    return oneOrMany(await eachAdapterOwner(api, ctx.parameterSet, args.VMName, (base) => api.call<unknown[]>('GET', `${base}/acls${q(args.VMNetworkAdapterName)}`)), args.VMName ?? (args.VMNetworkAdapterName ? [args.VMNetworkAdapterName] : undefined));
  },
});

export const removeVmNetworkAdapterAcl = defineCmdlet({
  name: 'Remove-VMNetworkAdapterAcl', synopsis: 'Remove the port ACL with these settings',
  params: aclParams, positional: ['VMName'], defaultSet: 'VM',
  async run(args, ctx) {
    const api = clientFor(ctx);
    await eachAdapterOwner(api, ctx.parameterSet, args.VMName, (base) => api.call('POST', `${base}/acls/remove${q(args.VMNetworkAdapterName)}`, {
      Direction: args.Direction, Action: args.Action, RemoteIPAddress: args.RemoteIPAddress, RemoteMacAddress: args.RemoteMacAddress,
    }));
    return undefined;
  },
});
