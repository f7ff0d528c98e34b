// One error table, seen from outside: the real CLI against a real daemon. For a switch error
// (SWITCH_* used to exit 1 whatever its HTTP status), a not-found and a conflict, the daemon's
// HTTP status and the CLI's exit code are the ones common/error-codes.ts gives the code; a
// wrong token exits 5. No VM is started, so the file runs in seconds.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ExitCode, exitCodeOf, httpStatusOf, isErrorCode } from '../src/common/index.ts';
import { TestDaemon, runCli } from './support/daemon.ts';

let d: TestDaemon;

before(async () => {
  d = await TestDaemon.start();
  const ok = await Promise.all([
    d.cli('New-VMSwitch', '-Name', 'QA', '-SwitchType', 'Private'),
    d.cli('New-VM', '-Name', 'vmx', '-NoVHD'),
  ]);
  for (const r of ok) assert.equal(r.code, 0, r.stderr);
  const nic = await d.cli('Add-VMNetworkAdapter', '-VMName', 'vmx', '-SwitchName', 'QA');
  assert.equal(nic.code, 0, nic.stderr);
});
after(async () => {
  await d?.stop();
});

/** The REST answer's code and status, then the CLI's exit code for the same request. */
async function same(expect: { code: string; status: number; exit: number }, rest: [string, string, unknown?], cli: string[]): Promise<void> {
  const r = await d.api(rest[0], rest[1], rest[2]);
  const body = r.json as { code?: unknown };
  assert.equal(body.code, expect.code, r.text);
  if (!isErrorCode(body.code)) assert.fail(`${String(body.code)} is not in the table`);
  assert.equal(r.status, expect.status, r.text);
  assert.equal(httpStatusOf(body.code), r.status);
  const c = await d.cli(...cli);
  assert.equal(c.code, expect.exit, c.stderr);
  assert.equal(exitCodeOf(body.code), c.code);
  assert.equal(c.stderr.split('\n').filter(Boolean).length, 1, `one line: ${c.stderr}`);
}

test('a switch policy error is a usage error: HTTP 400, exit 2', async () => {
  await same({ code: 'SWITCH_BAD_POLICY', status: 400, exit: ExitCode.usage },
    ['PUT', '/api/v1/vms/vmx/network-adapters/vlan', { Isolated: true, PrimaryVlanId: 10, SecondaryVlanId: 10 }],
    ['Set-VMNetworkAdapterVlan', '-VMName', 'vmx', '-Isolated', '-PrimaryVlanId', '10', '-SecondaryVlanId', '10']);
});

test('a switch that is busy is a conflict: HTTP 409, exit 4', async () => {
  const first = await d.cli('Start-VMSwitchCapture', '-SwitchName', 'QA', '-Path', join(d.dataDir, 'a.pcap'));
  assert.equal(first.code, 0, first.stderr);
  try {
    await same({ code: 'SWITCH_CAPTURE_ACTIVE', status: 409, exit: ExitCode.invalidState },
      ['POST', '/api/v1/switches/QA/capture', { Path: join(d.dataDir, 'b.pcap') }],
      ['Start-VMSwitchCapture', '-SwitchName', 'QA', '-Path', join(d.dataDir, 'c.pcap')]);
  } finally {
    assert.equal((await d.cli('Stop-VMSwitchCapture', '-SwitchName', 'QA')).code, 0);
  }
});

test('not found: HTTP 404, exit 3', async () => {
  await same({ code: 'NOT_FOUND', status: 404, exit: ExitCode.notFound }, ['GET', '/api/v1/switches/nope'], ['Get-VMSwitch', 'nope']);
});

test('a wrong token: HTTP 401, exit 5', async () => {
  const r = await d.api('GET', '/api/v1/vms', undefined, 'wrong-token');
  assert.equal(r.status, httpStatusOf('UNAUTHORIZED'));
  assert.equal((r.json as { code: string }).code, 'UNAUTHORIZED');
  const c = await runCli(['Get-VM'], { VMHOST_URL: d.url, VMHOST_TOKEN: 'wrong-token' });
  assert.equal(c.code, exitCodeOf('AUTH_FAILED'));
  assert.equal(c.code, ExitCode.connection);
});
