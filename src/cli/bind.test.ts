import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VmhostError } from '../common/index.ts';
import { bindArguments, joinCommaContinuations } from './bind.ts';
import { sampleRegistry } from './sample-cmdlets.fixture.ts';

const { registry } = sampleRegistry();
const def = (name: string) => registry.get(name)!;
const bind = (cmdlet: string, ...argv: string[]) => bindArguments(def(cmdlet), argv);

/** Asserts a binding error: its code, and that the message is one line starting with the cmdlet name. */
function fails(cmdlet: string, argv: string[], code: string, includes: string): string {
  try {
    bindArguments(def(cmdlet), argv);
  } catch (e) {
    assert.ok(e instanceof VmhostError, String(e));
    assert.equal(e.code, code, e.message);
    assert.ok(!e.message.includes('\n'), 'one line');
    assert.ok(e.message.startsWith(`${def(cmdlet).name}: `), e.message);
    assert.ok(e.message.includes(includes), `${e.message} should include ${includes}`);
    return e.message;
  }
  assert.fail(`${cmdlet} ${argv.join(' ')} should fail with ${code}`);
}

test('-Name value and -Name:value', () => {
  assert.equal(bind('New-VM', '-Name', 't1').args['Name'], 't1');
  assert.equal(bind('New-VM', '-Name:t1').args['Name'], 't1');
  assert.equal(bind('New-VM', '-Name:', 't1').args['Name'], 't1', '-Name: value (PowerShell allows a space after the colon)');
  assert.equal(bind('New-VM', 't1', '-Path:C:\\vms\\a').args['Path'], 'C:\\vms\\a', 'only the first colon separates');
  assert.equal(bind('New-VM', '-Name', 't1', '-Path', '/var/vm:x').args['Path'], '/var/vm:x');
});

test('parameter names are case-insensitive and canonicalised', () => {
  const b = bind('New-VM', '-name', 't1', '-MEMORYSTARTUPBYTES', '1GB');
  assert.equal(b.args['Name'], 't1');
  assert.equal(b.args['MemoryStartupBytes'], 1024 ** 3);
  assert.deepEqual([...b.bound].sort(), ['MemoryStartupBytes', 'Name']);
});

test('unique prefixes resolve; exact names win over longer ones', () => {
  const b = bind('New-VM', '-Mem', '256MB', '-Na', 't1', '-Gen', '2');
  assert.equal(b.args['MemoryStartupBytes'], 256 * 1024 ** 2);
  assert.equal(b.args['Name'], 't1');
  assert.equal(b.args['Generation'], 2);
  fails('New-VM', ['-N', 't1'], 'CLI_AMBIGUOUS_PARAMETER', '-Name, -NewVHDPath, -NewVHDSizeBytes, -NoVHD');
  // -Path is a name in its own right and a prefix of -ParentPath: the exact name wins.
  assert.equal(bind('New-VHD', '-Path', 'd.vhdx', '1GB').args['Path'], 'd.vhdx');
  assert.equal(bind('Stop-VM', 'a', '-TurnOf').args['TurnOff'], true);
});

test('ambiguous prefix lists the candidates', () => {
  const msg = fails('New-VM', ['-Name', 't1', '-NewVHD', 'x'], 'CLI_AMBIGUOUS_PARAMETER', "'NewVHD' is ambiguous");
  assert.match(msg, /-NewVHDPath, -NewVHDSizeBytes/);
  fails('New-VHD', ['-P', 'x'], 'CLI_AMBIGUOUS_PARAMETER', '-Path, -ParentPath, -PassThru');
});

test('aliases bind to the canonical name, also by prefix', () => {
  assert.equal(bind('Stop-VM', '-VMName', 'a').args['Name'] !== undefined, true);
  assert.deepEqual(bind('Stop-VM', '-VMName', 'a').args['Name'], ['a']);
  assert.deepEqual(bind('Stop-VM', '-vmn', 'a').args['Name'], ['a']);
  assert.deepEqual(bind('Get-VM', '-CN', 'h1,h2').args['ComputerName'], ['h1', 'h2']);
});

test('unknown parameter: PowerShell wording, one line, with a suggestion', () => {
  const msg = fails('Get-VM', ['-Foo'], 'CLI_UNKNOWN_PARAMETER', '');
  assert.equal(msg, "Get-VM: a parameter cannot be found that matches parameter name 'Foo'");
});

test('a misspelt parameter suggests the close one', () => {
  fails('Stop-VM', ['a', '-TurnOfff'], 'CLI_UNKNOWN_PARAMETER', 'did you mean -TurnOff?');
});

test('switches: present, -Switch:$false, -Switch:$true, false/true/0/1, absent = false', () => {
  assert.equal(bind('Stop-VM', 'a', '-TurnOff').args['TurnOff'], true);
  assert.equal(bind('Stop-VM', 'a').args['TurnOff'], false);
  assert.equal(bind('Stop-VM', 'a').args['Json'], false);
  assert.equal(bind('Stop-VM', 'a', '-TurnOff:$false').args['TurnOff'], false);
  assert.equal(bind('Stop-VM', 'a', '-TurnOff:$TRUE').args['TurnOff'], true);
  assert.equal(bind('Stop-VM', 'a', '-TurnOff:false').args['TurnOff'], false);
  assert.equal(bind('Stop-VM', 'a', '-TurnOff:0').args['TurnOff'], false);
  assert.equal(bind('Stop-VM', 'a', '-TurnOff:1').args['TurnOff'], true);
  assert.ok(bind('Stop-VM', 'a', '-TurnOff:$false').bound.has('TurnOff'), 'given, even if false');
});

test('a switch does not take the next word as its value', () => {
  fails('Stop-VM', ['a', '-TurnOff', 'true'], 'CLI_INVALID_PARAMETER', "a positional parameter cannot be found that accepts argument 'true'");
});

test('-Switch: with nothing after the colon explains the shell expansion', () => {
  fails('Stop-VM', ['a', '-TurnOff:'], 'CLI_INVALID_PARAMETER', "write -TurnOff:false or -TurnOff:'$false'");
  fails('Stop-VM', ['a', '-TurnOff:maybe'], 'CLI_INVALID_PARAMETER', "'maybe' is not a boolean");
});

test('bool parameters take $true/$false/true/false/1/0 as a value', () => {
  assert.equal(bind('Set-VMMemory', 'a', '-DynamicMemoryEnabled', '$false').args['DynamicMemoryEnabled'], false);
  assert.equal(bind('Set-VMMemory', 'a', '-DynamicMemoryEnabled:$true').args['DynamicMemoryEnabled'], true);
  assert.equal(bind('Set-VMMemory', 'a', '-DynamicMemoryEnabled', 'TRUE').args['DynamicMemoryEnabled'], true);
  assert.equal(bind('Set-VMMemory', 'a', '-DynamicMemoryEnabled', '0').args['DynamicMemoryEnabled'], false);
  assert.equal(bind('Set-VMMemory', 'a').args['DynamicMemoryEnabled'], undefined, 'absent bool stays undefined');
  fails('Set-VMMemory', ['a', '-DynamicMemoryEnabled', 'yes'], 'CLI_INVALID_PARAMETER', "parameter -DynamicMemoryEnabled: 'yes' is not a boolean");
  fails('Set-VMMemory', ['a', '-DynamicMemoryEnabled:'], 'CLI_INVALID_PARAMETER', 'no value after');
});

test('sizes: suffixes, decimals, and the bad-size message', () => {
  assert.equal(bind('New-VM', 't1', '-MemoryStartupBytes', '1.5GB').args['MemoryStartupBytes'], 1.5 * 1024 ** 3);
  assert.equal(bind('New-VM', 't1', '-MemoryStartupBytes', '536870912').args['MemoryStartupBytes'], 536870912);
  const msg = fails('New-VM', ['t1', '-MemoryStartupBytes', '3XB'], 'CLI_INVALID_PARAMETER', '');
  assert.equal(msg, "New-VM: parameter -MemoryStartupBytes: '3XB' is not a size (use e.g. 512MB, 1GB)");
});

test('ints: ranges and allowed values', () => {
  assert.equal(bind('New-VM', 't1', '-Generation', '2').args['Generation'], 2);
  fails('New-VM', ['t1', '-Generation', '3'], 'CLI_INVALID_PARAMETER', "parameter -Generation: '3' is not one of 1, 2");
  fails('New-VM', ['t1', '-Generation', 'two'], 'CLI_INVALID_PARAMETER', "'two' is not an integer");
  assert.equal(bind('Set-VMMemory', 'a', '-Priority', '100').args['Priority'], 100);
  fails('Set-VMMemory', ['a', '-Priority', '101'], 'CLI_INVALID_PARAMETER', "'101' is out of range (0 to 100)");
  fails('Add-VMHardDiskDrive', ['a', '-ControllerNumber', '-1'], 'CLI_INVALID_PARAMETER', "'-1' is out of range (at least 0)");
});

test('negative numbers are values, not parameter names', () => {
  fails('Set-VMMemory', ['a', '-Buffer', '-5'], 'CLI_INVALID_PARAMETER', "parameter -Buffer: '-5' is out of range (5 to 2000)");
});

test('enums: case-insensitive, canonicalised; bad value lists the choices', () => {
  assert.equal(bind('Add-VMHardDiskDrive', 'a', '-ControllerType', 'scsi').args['ControllerType'], 'SCSI');
  assert.equal(bind('New-VM', 't1', '-BootDevice', 'networkadapter').args['BootDevice'], 'NetworkAdapter');
  const msg = fails('Add-VMHardDiskDrive', ['a', '-ControllerType', 'SATA'], 'CLI_INVALID_PARAMETER', '');
  assert.equal(msg, "Add-VMHardDiskDrive: parameter -ControllerType: 'SATA' is not one of IDE, SCSI");
});

test('guids: canonical lower case, braces allowed, arrays of guids', () => {
  const g = '5A9B3C1E-0F2D-4E6A-8B7C-9D0E1F2A3B4C';
  assert.equal(bind('Get-VM', '-Id', g).args['Id'], g.toLowerCase());
  assert.equal(bind('Get-VM', '-Id', `{${g}}`).args['Id'], g.toLowerCase());
  fails('Get-VM', ['-Id', 'not-a-guid'], 'CLI_INVALID_PARAMETER', "parameter -Id: 'not-a-guid' is not a GUID");
  assert.deepEqual(bind('Add-VMHardDiskDrive', 'a', '-VMId', `${g},${g}`).args['VMId'], [g.toLowerCase(), g.toLowerCase()]);
});

test('arrays: a,b,c and the shell-split forms a, b and a ,b', () => {
  assert.deepEqual(bind('Get-VM', '-Name', 'a,b,c').args['Name'], ['a', 'b', 'c']);
  assert.deepEqual(bind('Get-VM', '-Name', 'a,', 'b').args['Name'], ['a', 'b']);
  assert.deepEqual(bind('Get-VM', '-Name', 'a', ',b').args['Name'], ['a', 'b']);
  assert.deepEqual(bind('Get-VM', '-Name:a,b').args['Name'], ['a', 'b']);
  assert.deepEqual(bind('Get-VM', 'a,b').args['Name'], ['a', 'b'], 'positional array');
  assert.deepEqual(bind('Get-VM', '-Name', 'one').args['Name'], ['one'], 'a single value is a one-element array');
  fails('Get-VM', ['-Name', 'a,,b'], 'CLI_INVALID_PARAMETER', 'empty list item');
  assert.equal(bind('New-VM', '-Name', 'a,b').args['Name'], 'a,b', 'a scalar string keeps its commas');
});

test('joinCommaContinuations leaves parameter words alone', () => {
  assert.deepEqual(joinCommaContinuations(['-Name', 'a,', 'b', '-Json']), ['-Name', 'a,b', '-Json']);
  assert.deepEqual(joinCommaContinuations(['-Name', 'a,', '-Json']), ['-Name', 'a,', '-Json']);
});

test('positional binding: Get-VM web* binds -Name at position 0; New-VHD path size', () => {
  assert.deepEqual(bind('Get-VM', 'web*').args['Name'], ['web*']);
  const b = bind('New-VHD', 'd.vhdx', '10GB');
  assert.equal(b.args['Path'], 'd.vhdx');
  assert.equal(b.args['SizeBytes'], 10 * 1024 ** 3);
  assert.deepEqual([...b.bound].sort(), ['Path', 'SizeBytes']);
});

test('named parameters take their position out of the positional queue', () => {
  const b = bind('New-VHD', '-Path', 'd.vhdx', '10GB');
  assert.equal(b.args['SizeBytes'], 10 * 1024 ** 3);
  const c = bind('Add-VMHardDiskDrive', '-VMName', 'vm1', 'disk.vhdx');
  assert.deepEqual(c.args['VMName'], ['vm1']);
  assert.equal(c.args['Path'], 'disk.vhdx');
});

test('extra bare words are rejected', () => {
  fails('Get-VM', ['a', 'b'], 'CLI_INVALID_PARAMETER', "a positional parameter cannot be found that accepts argument 'b'");
});

test('-- ends parameter names: names starting with - can be given', () => {
  assert.deepEqual(bind('Get-VM', '--', '-odd').args['Name'], ['-odd']);
  assert.equal(bind('New-VM', '-Name:-odd').args['Name'], '-odd');
});

test('missing argument and duplicate parameter', () => {
  fails('New-VM', ['-Name'], 'CLI_INVALID_PARAMETER', 'missing an argument for parameter -Name');
  fails('New-VM', ['-Name', '-Json'], 'CLI_INVALID_PARAMETER', 'missing an argument for parameter -Name');
  fails('New-VM', ['-Name', 'a', '-Name', 'b'], 'CLI_INVALID_PARAMETER', 'parameter -Name is specified more than once');
  fails('New-VM', ['a', '-Name', 'b'], 'CLI_INVALID_PARAMETER', "a positional parameter cannot be found that accepts argument 'a'");
});

test('missing mandatory parameters are named', () => {
  fails('New-VM', ['-Mem', '1GB'], 'CLI_MISSING_PARAMETER', 'missing mandatory parameter -Name');
  fails('New-VHD', ['-Fixed'], 'CLI_MISSING_PARAMETER', 'missing mandatory parameters -Path, -SizeBytes');
  fails('Stop-VM', ['-TurnOff'], 'CLI_MISSING_PARAMETER', '-Name');
});

test('parameter sets: default, selected by a switch, selected by a set-only parameter', () => {
  assert.equal(bind('New-VHD', 'd.vhdx', '1GB').parameterSet, 'Dynamic');
  assert.equal(bind('New-VHD', 'd.vhdx', '1GB', '-Dynamic').parameterSet, 'Dynamic');
  assert.equal(bind('New-VHD', 'd.vhdx', '1GB', '-Fixed').parameterSet, 'Fixed');
  assert.equal(bind('New-VHD', 'd.vhdx', '-ParentPath', 'p.vhdx').parameterSet, 'Differencing');
  assert.equal(bind('New-VHD', 'd.vhdx', '-Differencing', '-ParentPath', 'p.vhdx').parameterSet, 'Differencing');
  assert.equal(bind('Get-VM').parameterSet, 'Name');
  assert.equal(bind('Get-VM', '-Id', '5a9b3c1e-0f2d-4e6a-8b7c-9d0e1f2a3b4c').parameterSet, 'Id');
  assert.equal(bind('New-VM', 't1').parameterSet, undefined, 'a cmdlet without sets');
});

test('parameter sets: mutually exclusive switches and set-mandatory parameters', () => {
  fails('New-VHD', ['d.vhdx', '1GB', '-Fixed', '-Dynamic'], 'CLI_PARAMETER_SET', '-Fixed and -Dynamic cannot be used together');
  fails('New-VHD', ['d.vhdx', '-Fixed', '-ParentPath', 'p'], 'CLI_PARAMETER_SET', 'cannot be used together');
  fails('New-VHD', ['d.vhdx', '-Differencing'], 'CLI_MISSING_PARAMETER', 'missing mandatory parameter -ParentPath');
  fails('Get-VM', ['web', '-Id', '5a9b3c1e-0f2d-4e6a-8b7c-9d0e1f2a3b4c'], 'CLI_PARAMETER_SET', '-Name and -Id cannot be used together');
});

test('common parameters on every cmdlet', () => {
  const b = bind('Get-VM', '-ComputerName', 'h1,h2', '-Json', '-Verbose');
  assert.deepEqual(b.args['ComputerName'], ['h1', 'h2']);
  assert.equal(b.args['Json'], true);
  assert.equal(b.args['Verbose'], true);
  assert.equal(bind('Stop-VM', 'a', '-Passthru').args['PassThru'], true, '-Passthru spelling');
  assert.equal(bind('Stop-VM', 'a', '-PassThru').args['PassThru'], true);
  fails('Get-VM', ['-Force'], 'CLI_UNKNOWN_PARAMETER', "'Force'");
  assert.equal(bind('Stop-VM', 'a', '-Force').args['Force'], true, '-Force where the cmdlet defines it');
});

test('wildcard parameters reject invalid patterns at bind time', () => {
  fails('Get-VM', ['web[1'], 'CLI_INVALID_PARAMETER', "parameter -Name: 'web[1' is not a valid wildcard pattern");
});

test('edge forms: -Name: at the end, host:port after a colon, array continuation after a colon', () => {
  fails('New-VM', ['-Name:'], 'CLI_INVALID_PARAMETER', 'missing an argument for parameter -Name');
  assert.deepEqual(bind('Get-VM', '-ComputerName:localhost:8080').args['ComputerName'], ['localhost:8080']);
  assert.deepEqual(bind('Get-VM', '-Name:a,', 'b').args['Name'], ['a', 'b']);
  fails('Get-VM', ['-Name', 'a,', '-Json'], 'CLI_INVALID_PARAMETER', "'a,' has an empty list item");
});
