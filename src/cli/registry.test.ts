import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defineCmdlet, type AnyCmdletDef } from './cmdlet.ts';
import { formatCmdletList, formatHelp, syntaxLine } from './help.ts';
import { CmdletRegistry } from './registry.ts';
import { sampleRegistry } from './sample-cmdlets.fixture.ts';

const { registry } = sampleRegistry();
const run = async () => undefined;

test('lookup is case-insensitive and returns the canonical definition', () => {
  assert.equal(registry.get('get-vm')?.name, 'Get-VM');
  assert.equal(registry.get('GET-VM')?.name, 'Get-VM');
  assert.equal(registry.get('Get-VMs'), undefined);
});

test('list is sorted, and filters by wildcard', () => {
  assert.deepEqual(registry.list().map((d) => d.name), ['Add-VMHardDiskDrive', 'Get-VM', 'New-VHD', 'New-VM', 'Set-VMMemory', 'Stop-VM']);
  assert.deepEqual(registry.list('new-*').map((d) => d.name), ['New-VHD', 'New-VM']);
});

test('did you mean: close names first', () => {
  assert.deepEqual(registry.suggest('Get-Vn'), ['Get-VM']);
  assert.deepEqual(registry.suggest('Stop-MV'), ['Stop-VM']);
  assert.ok(registry.suggest('New-VMM').includes('New-VM'));
  assert.deepEqual(registry.suggest('Frobnicate-Everything'), []);
});

test('definitions are checked when added', () => {
  const bad = (def: AnyCmdletDef, msg: RegExp) =>
    assert.throws(() => new CmdletRegistry().add(def), (e: Error & { code?: string }) => e.code === 'CLI_INVALID_DEFINITION' && msg.test(e.message));
  bad(defineCmdlet({ name: 'GetVM', params: {}, run }), /Verb-Noun/);
  bad(defineCmdlet({ name: 'Get-X', params: { Json: { type: 'switch' } }, run }), /-Json is a common parameter/);
  bad(defineCmdlet({ name: 'Get-X', params: { Name: { type: 'string' }, Other: { type: 'string', aliases: ['name'] } }, run }), /-name names both/);
  bad(defineCmdlet({ name: 'Get-X', params: { Name: { type: 'string', aliases: ['CN'] } }, run }), /-CN names both -ComputerName and -Name/);
  bad(defineCmdlet({ name: 'Get-X', params: { Kind: { type: 'enum', values: [] } }, run }), /no enum values/);
  bad(defineCmdlet({ name: 'Get-X', params: { F: { type: 'switch' } }, positional: ['F'], run }), /cannot be positional/);
  bad(defineCmdlet({ name: 'Get-X', params: { A: { type: 'string', sets: ['S1'] } }, defaultSet: 'S2', run }), /default set S2/);
  bad(defineCmdlet({ name: 'Get-X', params: { A: { type: 'string', sets: ['S1'], mandatory: ['S2'] } }, run }), /mandatory in a set/);
  const r = new CmdletRegistry().add(defineCmdlet({ name: 'Get-X', params: {}, run }));
  assert.throws(() => r.add(defineCmdlet({ name: 'get-x', params: {}, run })), /registered twice/);
});

test('syntax lines per parameter set, PowerShell style', () => {
  const vhd = registry.get('New-VHD')!;
  assert.equal(syntaxLine(vhd, 'Fixed'),
    'New-VHD [-Path] <String> [-SizeBytes] <Size> -Fixed [-BlockSizeBytes <Size>] [-LogicalSectorSizeBytes {512 | 4096}] [<CommonParameters>]');
  assert.equal(syntaxLine(vhd, 'Differencing'),
    'New-VHD [-Path] <String> [[-SizeBytes] <Size>] [-Differencing] -ParentPath <String> [-BlockSizeBytes <Size>] [-LogicalSectorSizeBytes {512 | 4096}] [<CommonParameters>]');
  assert.equal(syntaxLine(registry.get('Get-VM')!, 'Name'), 'Get-VM [[-Name] <String[]>] [<CommonParameters>]');
  assert.equal(syntaxLine(registry.get('Add-VMHardDiskDrive')!),
    'Add-VMHardDiskDrive [-VMName] <String[]> [[-Path] <String>] [-ControllerType {IDE | SCSI}] [-ControllerNumber <Int>] [-VMId <Guid[]>] [<CommonParameters>]');
});

test('help page: name, synopsis, one syntax line per set, parameters with aliases and positions, common parameters', () => {
  const text = formatHelp(registry.get('Get-VM')!);
  assert.match(text, /^NAME\n {4}Get-VM\n\nSYNOPSIS\n {4}List VMs\n\nSYNTAX\n/);
  assert.match(text, /Get-VM \[\[-Name\] <String\[\]>\] \[<CommonParameters>\]\n\n {4}Get-VM -Id <Guid> \[<CommonParameters>\]/);
  assert.match(text, /-Name <String\[\]>\n {8}\(aliases: -VMName; position 0; wildcards\)/);
  assert.match(text, /-Id <Guid>\n {8}\(mandatory in Id\)/);
  assert.match(text, /COMMON PARAMETERS\n {4}-ComputerName <String\[\]> +Host/);
  assert.match(formatHelp(registry.get('New-VM')!), /-MemoryStartupBytes <Size>\n {8}Startup memory, e\.g\. 512MB/);
});

test('cmdlet list: names padded, synopsis after', () => {
  assert.equal(formatCmdletList(registry.list('*-VM')), 'Get-VM   List VMs\nNew-VM   Create a VM\nStop-VM  Shut down, turn off or save a VM\n');
});

test('long syntax lines wrap between parameters, not inside them', async () => {
  const { wrapSyntax } = await import('./help.ts');
  const line = syntaxLine(registry.get('New-VHD')!, 'Differencing');
  const lines = wrapSyntax(line, 60);
  assert.ok(lines.length > 1);
  for (const l of lines) assert.ok(l.length <= 60, l);
  assert.equal(lines.map((l) => l.trim()).join(' '), line);
  assert.ok(lines.some((l) => l.includes('[-LogicalSectorSizeBytes {512 | 4096}]')));
  assert.ok(lines.some((l) => l.includes('[[-SizeBytes] <Size>]')));
  assert.ok(lines.some((l) => l.includes('-ParentPath <String>')));
});
