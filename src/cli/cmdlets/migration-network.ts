// Add-/Get-/Set-/Remove-VMMigrationNetwork: the subnets live migration's stream may use, with
// their priority (lower first); they apply while Set-VMHost -UseAnyNetworkForMigration is $false.
import type { MigrationNetwork } from '../../host/index.ts';
import { defineCmdlet } from '../cmdlet.ts';
import { clientFor } from './vm-select.ts';

const view = { columns: ['Subnet', 'Priority'].map((c) => ({ label: c, value: c })) };
const Subnet = { type: 'string', help: 'ADDRESS/PREFIX, IPv4 or IPv6 (10.1.0.0/16, fd00:1::/64)' } as const;
const Priority = { type: 'int', min: 0, max: 2147483647, help: 'Lower is tried first' } as const;

export const getVmMigrationNetwork = defineCmdlet({
  name: 'Get-VMMigrationNetwork',
  synopsis: 'List the subnets live migration may use, best priority first',
  params: { Subnet, Priority },
  positional: ['Subnet'],
  view,
  async run(args, ctx) {
    const q = new URLSearchParams();
    if (args.Subnet !== undefined) q.set('Subnet', args.Subnet);
    if (args.Priority !== undefined) q.set('Priority', String(args.Priority));
    return clientFor(ctx).call<MigrationNetwork[]>('GET', `/host/migration-networks?${q}`);
  },
});

export const addVmMigrationNetwork = defineCmdlet({
  name: 'Add-VMMigrationNetwork',
  synopsis: 'Let live migration use a subnet (without -Priority: after the listed ones)',
  params: { Subnet: { ...Subnet, mandatory: true }, Priority },
  positional: ['Subnet', 'Priority'],
  view,
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.Subnet)) return undefined;
    const list = await clientFor(ctx).call<MigrationNetwork[]>('POST', '/host/migration-networks', { Subnet: args.Subnet, Priority: args.Priority });
    return args.PassThru ? list : undefined;
  },
});

export const setVmMigrationNetwork = defineCmdlet({
  name: 'Set-VMMigrationNetwork',
  synopsis: 'Change a migration subnet or its priority',
  params: {
    Subnet: { ...Subnet, mandatory: true }, NewSubnet: { ...Subnet, help: 'The subnet it becomes' }, NewPriority: { ...Priority, help: 'Its new priority (lower is tried first)' },
  },
  positional: ['Subnet', 'NewSubnet'],
  view,
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.Subnet)) return undefined;
    const list = await clientFor(ctx).call<MigrationNetwork[]>('PATCH', '/host/migration-networks', { Subnet: args.Subnet, NewSubnet: args.NewSubnet, NewPriority: args.NewPriority });
    return args.PassThru ? list : undefined;
  },
});

export const removeVmMigrationNetwork = defineCmdlet({
  name: 'Remove-VMMigrationNetwork',
  synopsis: 'Stop live migration from using a subnet',
  params: { Subnet: { ...Subnet, mandatory: true } },
  positional: ['Subnet'],
  view,
  supportsShouldProcess: true,
  async run(args, ctx) {
    if (!ctx.shouldProcess(args.Subnet)) return undefined;
    await clientFor(ctx).call<MigrationNetwork[]>('DELETE', `/host/migration-networks?${new URLSearchParams({ Subnet: args.Subnet })}`);
    return undefined;
  },
});
