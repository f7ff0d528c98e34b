import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { isVmhostError } from '../common/index.ts';
import { BUILT_IN_CAU_PLUGINS, pluginRecord, templatePlugin } from './cau-plugin.ts';

const refused = (f: () => unknown, re: RegExp, code = 'INVALID_ARGUMENT'): void => {
  assert.throws(f, (e: unknown) => isVmhostError(e) && e.code === code && re.test(e.message));
};

test('vmhost.Command: Command for the update, ScanCommand for the scan, nothing else', () => {
  const p = BUILT_IN_CAU_PLUGINS[0]!;
  assert.equal(p.updateCommand({ Command: ' apt-get install -y vmhost ', ScanCommand: 'x' }), 'apt-get install -y vmhost');
  assert.equal(p.scanCommand({ ScanCommand: 'apt list --upgradable' }), 'apt list --upgradable');
  refused(() => p.scanCommand({ Command: 'x' }), /needs -CauPluginArguments @\{ScanCommand=/);
  refused(() => p.updateCommand({ Command: 'x', Package: 'y' }), /takes only the arguments Command and ScanCommand, not Package/);
});

test('a registered template: each {Name} an argument, filled in shell-quoted, all required, no other accepted', () => {
  const p = templatePlugin(pluginRecord({ Name: 'acme.Apt', Description: '', UpdateCommand: 'printf "%s|" {Package} {Version}', ScanCommand: 'echo {Package}' }));
  const hostile = `it's $(id) "q" \`x\` ;|&`;
  const cmd = p.updateCommand({ Package: hostile, Version: '1.0' });
  assert.equal(execFileSync('/bin/sh', ['-c', cmd], { encoding: 'utf8' }), `${hostile}|1.0|`, 'the shell saw each argument as one word, unexpanded');
  refused(() => p.updateCommand({ Package: 'x' }), /acme\.Apt: needs the argument Version/);
  refused(() => p.updateCommand({ Package: 'x', Version: '1', Other: 'y' }), /acme\.Apt: has no argument Other \(its arguments: Package, Version\)/);
  const noScan = templatePlugin(pluginRecord({ Name: 'acme.NoScan', Description: '', UpdateCommand: 'true' }));
  refused(() => noScan.scanCommand({}), /registered without a -ScanCommand/);
});

test('Register-CauPlugin\'s input: a built-in\'s name, a stray brace, an empty template refused', () => {
  refused(() => pluginRecord({ Name: 'VMHOST.command', Description: '', UpdateCommand: 'true' }), /is a built-in CAU plugin/, 'ALREADY_EXISTS');
  refused(() => pluginRecord({ Name: 'a', Description: '', UpdateCommand: 'echo {1x}' }), /'\{1x\}' is no argument placeholder/);
  refused(() => pluginRecord({ Name: 'a', Description: '', UpdateCommand: 'true', ScanCommand: '  ' }), /-ScanCommand: empty/);
});
