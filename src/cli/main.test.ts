import { test } from 'node:test';
import assert from 'node:assert/strict';
import { main } from './main.ts';
import { sampleRegistry, type SampleVm } from './sample-cmdlets.fixture.ts';

const MiB = 1024 * 1024;
const VMS: SampleVm[] = [
  { Name: 'web1', State: 'Running', CPUUsage: 2, MemoryAssigned: 512 * MiB, Uptime: 312, Status: 'Operating normally' },
  { Name: 'web2', State: 'Off', CPUUsage: 0, MemoryAssigned: 0, Uptime: 0, Status: 'Operating normally' },
  { Name: 'db', State: 'Running', CPUUsage: 7, MemoryAssigned: 1024 * MiB, Uptime: 93784, Status: 'Operating normally' },
];

async function vmhost(...argv: string[]) {
  const { registry, calls } = sampleRegistry(VMS.map((v) => ({ ...v })));
  let out = '', err = '';
  const code = await main(argv, { registry, stdout: { write: (s: string) => { out += s; } }, stderr: { write: (s: string) => { err += s; } }, columns: 120 });
  return { code, out, err, calls };
}

test('Get-VM web* prints the default table of matching VMs', async () => {
  const r = await vmhost('get-vm', 'web*');
  assert.equal(r.code, 0);
  assert.equal(r.err, '');
  assert.equal(r.out, [
    'Name State   CPUUsage(%) MemoryAssigned(M) Uptime   Status',
    '---- -----   ----------- ----------------- ------   ------',
    'web1 Running 2           512               00:05:12 Operating normally',
    'web2 Off     0           0                 00:00:00 Operating normally',
    '',
  ].join('\n'));
});

test('-Json: an array for Get-VM (even one VM), an object for New-VM', async () => {
  const one = await vmhost('Get-VM', '-Name', 'db', '-Json');
  assert.equal(one.code, 0);
  assert.deepEqual(JSON.parse(one.out), [VMS[2]]);
  const created = await vmhost('New-VM', '-Name', 't1', '-MemoryStartupBytes', '256MB', '-Json');
  assert.equal(created.code, 0);
  const obj = JSON.parse(created.out) as Record<string, unknown>;
  assert.equal(obj['Name'], 't1');
  assert.equal(obj['MemoryStartup'], 256 * MiB);
});

test('empty output prints nothing', async () => {
  const r = await vmhost('Get-VM', 'nomatch*');
  assert.equal(r.code, 0);
  assert.equal(r.out, '');
  const j = await vmhost('Get-VM', 'nomatch*', '-Json');
  assert.equal(j.out, '');
});

test('action cmdlets are silent unless -PassThru', async () => {
  const quiet = await vmhost('Stop-VM', '-Name', 'web1', '-TurnOff');
  assert.equal(quiet.code, 0);
  assert.equal(quiet.out, '');
  assert.equal(quiet.calls[0]!.args['TurnOff'], true);
  const passed = await vmhost('Stop-VM', 'web1', '-Passthru', '-Json');
  assert.equal((JSON.parse(passed.out) as { Name: string }).Name, 'web1');
});

test('-WhatIf names each target and changes nothing; cmdlets that change nothing do not take it', async () => {
  const r = await vmhost('Stop-VM', 'web*', '-WhatIf');
  assert.equal(r.code, 0);
  assert.equal(r.out, 'What if: Performing the operation "Stop-VM" on target "web1".\nWhat if: Performing the operation "Stop-VM" on target "web2".\n');
  assert.deepEqual(r.calls, [], 'the handler did nothing');
  const get = await vmhost('Get-VM', '-WhatIf');
  assert.equal(get.code, 2);
  assert.match(get.err, /WhatIf/);
  assert.match((await vmhost('Stop-VM', '-?')).out, /-WhatIf/);
  assert.doesNotMatch((await vmhost('Get-VM', '-?')).out, /-WhatIf/);
});

test('the handler receives typed args, the parameter set, bound names and ComputerName', async () => {
  const r = await vmhost('New-VHD', 'd.vhdx', '10GB', '-Fixed', '-CN', 'host2');
  assert.equal(r.code, 0);
  assert.equal(r.calls[0]!.set, 'Fixed');
  assert.equal(r.calls[0]!.args['SizeBytes'], 10 * 1024 ** 3);
  assert.deepEqual(r.calls[0]!.args['ComputerName'], ['host2']);
  assert.match(r.out, /^Path {3}VhdType Size\n/);
});

test('-Verbose writes VERBOSE lines to stderr; without it nothing', async () => {
  assert.equal((await vmhost('Get-VM', '-Verbose')).err, 'VERBOSE: listing VMs on localhost\n');
  assert.equal((await vmhost('Get-VM', '-ComputerName', 'a,b')).err, '');
  assert.equal((await vmhost('Get-VM', '-ComputerName', 'a,b', '-Verbose')).err, 'VERBOSE: listing VMs on a,b\n');
});

test('parameter errors: one stderr line, exit 2, nothing on stdout', async () => {
  const bad = await vmhost('New-VM', '-Name', 't1', '-MemoryStartupBytes', '3XB');
  assert.equal(bad.code, 2);
  assert.equal(bad.out, '');
  assert.equal(bad.err, "New-VM: parameter -MemoryStartupBytes: '3XB' is not a size (use e.g. 512MB, 1GB)\n");
  const unknown = await vmhost('Get-VM', '-Foo');
  assert.equal(unknown.code, 2);
  assert.equal(unknown.err, "Get-VM: a parameter cannot be found that matches parameter name 'Foo'\n");
  assert.equal(unknown.calls.length, 0, 'the handler did not run');
  assert.equal((await vmhost('New-VHD', 'd', '1GB', '-Fixed', '-Dynamic')).code, 2);
  assert.equal((await vmhost('Stop-VM')).code, 2);
});

test('handler errors: prefixed with the cmdlet name once, exit code from the table', async () => {
  const nf = await vmhost('Get-VM', 'nosuch');
  assert.equal(nf.code, 3);
  assert.equal(nf.err, "Get-VM: Hyper-V was unable to find a virtual machine with name 'nosuch'.\n");
  const state = await vmhost('Stop-VM', 'web2');
  assert.equal(state.code, 4);
  assert.equal(state.err, "Stop-VM: the VM 'web2' is already off\n");
});

test('unknown cmdlet: did you mean, exit 2', async () => {
  const r = await vmhost('Get-Vn');
  assert.equal(r.code, 2);
  assert.equal(r.err, "vmhost: the term 'Get-Vn' is not recognized as a cmdlet; did you mean Get-VM? (vmhost help lists them)\n");
  const far = await vmhost('Frobnicate-All');
  assert.equal(far.err, "vmhost: the term 'Frobnicate-All' is not recognized as a cmdlet (vmhost help lists them)\n");
});

test('help: no arguments and `help` list cmdlets; -?, help X and Get-Help X print syntax', async () => {
  for (const argv of [[], ['help'], ['--help']]) {
    const r = await vmhost(...argv);
    assert.equal(r.code, 0);
    assert.match(r.out, /^Usage: vmhost/);
    assert.match(r.out, /\nNew-VHD +Create a virtual disk file\n/);
  }
  for (const argv of [['New-VHD', '-?'], ['help', 'new-vhd'], ['Get-Help', 'New-VHD'], ['new-vhd', '-Path', 'x', '-?']]) {
    const r = await vmhost(...argv);
    assert.equal(r.code, 0, argv.join(' '));
    assert.match(r.out, /^NAME\n {4}New-VHD\n/);
    assert.match(r.out, /New-VHD \[-Path\] <String> \[-SizeBytes\] <Size> -Fixed/);
  }
});

test('help with a pattern: one match prints its page, several print a list, none suggests', async () => {
  assert.match((await vmhost('help', 'Memory')).out, /^NAME\n {4}Set-VMMemory/);
  assert.equal((await vmhost('help', 'new-*')).out, 'New-VHD  Create a virtual disk file\nNew-VM   Create a VM\n');
  const none = await vmhost('help', 'Get-Vn');
  assert.equal(none.code, 2);
  assert.equal(none.err, "Get-Help: no help topic matches 'Get-Vn'; did you mean Get-VM?\n");
});

test('unexpected (non-VmhostError) errors exit 1 with one line', async () => {
  const { registry } = sampleRegistry();
  const { defineCmdlet } = await import('./cmdlet.ts');
  registry.add(defineCmdlet({ name: 'Test-Boom', params: {}, async run() { throw new TypeError('bad\nthing'); } }));
  let err = '';
  const code = await main(['Test-Boom'], { registry, stdout: { write: () => {} }, stderr: { write: (s: string) => { err += s; } } });
  assert.equal(code, 1);
  assert.equal(err, 'Test-Boom: TypeError: bad thing\n');
});

test('stream cmdlets write through ctx.stdout/stderr and set the exit code', async () => {
  const { defineCmdlet } = await import('./cmdlet.ts');
  const { CmdletRegistry } = await import('./registry.ts');
  const registry = new CmdletRegistry([
    defineCmdlet({
      name: 'Invoke-Command',
      params: { VMName: { type: 'string', mandatory: true }, ScriptBlock: { type: 'string', mandatory: true } },
      positional: ['VMName', 'ScriptBlock'],
      async run(args, ctx) {
        ctx.stdout.write(Buffer.from(`ran ${args.ScriptBlock} on ${args.VMName}\n`));
        ctx.stderr.write('warning from guest\n');
        ctx.setExitCode(7);
        return undefined;
      },
    }),
  ]);
  let out = '', err = '';
  const code = await main(['Invoke-Command', 'vm1', 'ls -l'], {
    registry, stdout: { write: (s: string | Uint8Array) => { out += String(s); } }, stderr: { write: (s: string | Uint8Array) => { err += String(s); } },
  });
  assert.equal(code, 7);
  assert.equal(out, 'ran ls -l on vm1\n');
  assert.equal(err, 'warning from guest\n');
});
