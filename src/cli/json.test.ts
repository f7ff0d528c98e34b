import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatJson, pascalCaseKeys } from './json.ts';
import { formatOutput } from './output.ts';
import { vmView } from './views.ts';

test('one object prints as an object, an array as an array (even of one), nothing as nothing', () => {
  assert.deepEqual(JSON.parse(formatJson({ Name: 'a' })), { Name: 'a' });
  assert.deepEqual(JSON.parse(formatJson([{ Name: 'a' }])), [{ Name: 'a' }]);
  assert.deepEqual(JSON.parse(formatJson([{ Name: 'a' }, { Name: 'b' }])), [{ Name: 'a' }, { Name: 'b' }]);
  assert.equal(formatJson(undefined), '');
  assert.equal(formatJson(null), '');
  assert.equal(formatJson([]), '');
  assert.equal(formatJson(true), 'true\n');
});

test('JSON is indented and newline-terminated', () => {
  assert.equal(formatJson({ Name: 'a', Id: 1 }), '{\n  "Name": "a",\n  "Id": 1\n}\n');
});

test('keys become PascalCase, deep; existing PascalCase and acronyms are kept', () => {
  assert.deepEqual(pascalCaseKeys({ name: 'a', CPUUsage: 1, VMId: 'x', networkAdapters: [{ macAddress: 'm' }], nested: { dynamicMemoryEnabled: true } }),
    { Name: 'a', CPUUsage: 1, VMId: 'x', NetworkAdapters: [{ MacAddress: 'm' }], Nested: { DynamicMemoryEnabled: true } });
});

test('dictionaries keyed by data keep their keys; their values are still records', () => {
  assert.deepEqual(pascalCaseKeys({ statistics: { drops: { 'mac-spoofing': 2, congestion: 1 }, ports: { 'ae3c-1': { rxFrames: 1, drops: { 'acl-deny': 3 } } } } }),
    { Statistics: { Drops: { 'mac-spoofing': 2, congestion: 1 }, Ports: { 'ae3c-1': { RxFrames: 1, Drops: { 'acl-deny': 3 } } } } });
});

test('dates become ISO strings, bigints numbers (or strings when unsafe), undefined properties are dropped', () => {
  assert.deepEqual(pascalCaseKeys({ creationTime: new Date('2026-01-01T00:00:00Z'), size: 10n, huge: 2n ** 60n, gone: undefined }),
    { CreationTime: '2026-01-01T00:00:00.000Z', Size: 10, Huge: '1152921504606846976' });
});

test('formatOutput: -Json vs table, primitives one per line', () => {
  const vm = { Name: 't1', State: 'Off', CPUUsage: 0, MemoryAssigned: 0, Uptime: 0, Status: 'Operating normally' };
  assert.match(formatOutput([vm], { json: false, view: vmView }), /^Name State CPUUsage\(%\)/);
  assert.deepEqual(JSON.parse(formatOutput([vm], { json: true, view: vmView })), [vm]);
  assert.equal(formatOutput(undefined, { json: false }), '');
  assert.equal(formatOutput([], { json: false }), '');
  assert.equal(formatOutput(true, { json: false }), 'True\n');
  assert.equal(formatOutput(['a', 'b'], { json: false }), 'a\nb\n');
});

test('a compatibility report\'s VM is vm.json verbatim (Import-VM -CompatibilityReport takes it back); other VM objects are not special', () => {
  const vm = { id: 'x', networkAdapters: [{ switchName: null }], integrationServices: { Heartbeat: true } };
  assert.deepEqual(pascalCaseKeys({ OperationType: 'ImportVirtualMachine', VM: vm }), { OperationType: 'ImportVirtualMachine', VM: vm });
  assert.deepEqual(pascalCaseKeys({ job: {}, VM: { state: 'Off' } }), { Job: {}, VM: { State: 'Off' } });
});
