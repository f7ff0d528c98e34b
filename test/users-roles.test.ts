// Users, roles, the audit log and VMConnect access, end to end with a real daemon, the real
// CLI and (for the power and console tests) a real QEMU test guest: a Viewer reads but cannot
// change, an Operator powers VMs but configures nothing, every change is in audit.jsonl with
// its user, and a console socket needs Grant-VMConnectAccess (Revoke closes it).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import WebSocket from 'ws';
import { runCli, TestDaemon } from './support/daemon.ts';

interface Audit { UserName: string | null; Role?: string; Method: string; Route: string; Params: Record<string, string>; Status: number; Outcome: string }

describe('users and roles', () => {
  let d: TestDaemon;
  before(async () => { d = await TestDaemon.start(); });
  after(async () => { await d?.stop(); });

  /** A user with the role and an API token for it (made by the built-in admin through the CLI). */
  async function userWithToken(name: string, role: 'Viewer' | 'Operator' | 'Administrator'): Promise<string> {
    const made = await d.cli('New-VMHostUser', '-Name', name, '-Role', role, '-NoPassword');
    assert.equal(made.code, 0, made.stderr);
    const t = await d.cli('New-VMHostUserToken', '-UserName', name, '-Json');
    assert.equal(t.code, 0, t.stderr);
    return (JSON.parse(t.stdout) as { Token: string }).Token;
  }
  const cliAs = (token: string, ...args: string[]) => runCli(args, { VMHOST_URL: d.url, VMHOST_TOKEN: token });
  async function newVm(name: string): Promise<void> {
    const r = await d.cli('New-VM', '-Name', name, '-MemoryStartupBytes', '256MB');
    assert.equal(r.code, 0, r.stderr);
  }
  async function audit(user: string): Promise<Audit[]> {
    const r = await d.api('GET', `/api/v1/audit?UserName=${user}`);
    assert.equal(r.status, 200, r.text);
    return r.json as Audit[];
  }

  test('a viewer credential can Get-VM but Stop-VM answers 403; the audit log names the user of each change', async () => {
    await newVm('rv1');
    const token = await userWithToken('viewer1', 'Viewer');

    const got = await d.api('GET', '/api/v1/vms/rv1', undefined, token);
    assert.equal(got.status, 200, got.text);
    assert.equal((got.json as { Name: string }).Name, 'rv1');
    const stop = await d.api('POST', '/api/v1/vms/rv1/stop', { TurnOff: true }, token);
    assert.equal(stop.status, 403, stop.text);
    assert.equal((stop.json as { code: string }).code, 'FORBIDDEN');

    const cliGet = await cliAs(token, 'Get-VM', '-Name', 'rv1');
    assert.equal(cliGet.code, 0, cliGet.stderr);
    assert.match(cliGet.stdout, /rv1\s+Off/);
    const cliStop = await cliAs(token, 'Stop-VM', '-Name', 'rv1', '-TurnOff');
    assert.equal(cliStop.code, 6, `Stop-VM as a Viewer exits 6 (forbidden): ${cliStop.stderr}`);
    assert.match(cliStop.stderr, /viewer1 is a Viewer: POST \/api\/v1\/vms\/:vm\/stop needs Operator/);
    assert.equal((await cliAs(token, 'Get-VMHostAudit')).code, 6, 'the audit log is for Administrators');
    assert.equal((await cliAs(token, 'New-VMHostUser', '-Name', 'sneaky', '-Role', 'Administrator', '-NoPassword')).code, 6);

    const id = (got.json as { Id: string }).Id;
    const mine = await audit('viewer1');
    assert.deepEqual(mine.map((r) => [r.Method, r.Route, r.Params.vm ?? r.Params.Name, r.Status, r.Outcome, r.Role]), [
      ['POST', '/api/v1/vms/:vm/stop', 'rv1', 403, 'Denied', 'Viewer'],
      ['POST', '/api/v1/vms/:vm/stop', id, 403, 'Denied', 'Viewer'], // the CLI names VMs by id
      ['POST', '/api/v1/users', 'sneaky', 403, 'Denied', 'Viewer'],
    ], 'GETs are not audited, refused changes are');
    const admin = await audit('admin');
    assert.ok(admin.some((r) => r.Method === 'POST' && r.Route === '/api/v1/vms' && r.Params.Name === 'rv1' && r.Outcome === 'Succeeded'), 'New-VM by admin');
    assert.ok(admin.some((r) => r.Route === '/api/v1/users/:name/tokens' && r.Params.name === 'viewer1'), 'New-VMHostUserToken by admin');
    const file = join(d.dataDir, 'audit.jsonl');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.ok(!(await readFile(file, 'utf8')).includes(token), 'no credential in the audit log');
  });

  test('an operator starts and stops a VM but cannot create switches or VMs, nor change a VM', async () => {
    await newVm('ro1');
    const token = await userWithToken('operator1', 'Operator');
    try {
      const start = await cliAs(token, 'Start-VM', '-Name', 'ro1');
      assert.equal(start.code, 0, start.stderr);
      const off = await cliAs(token, 'Stop-VM', '-Name', 'ro1', '-TurnOff');
      assert.equal(off.code, 0, off.stderr);
      for (const args of [['New-VMSwitch', '-Name', 'opsw', '-SwitchType', 'Private'], ['New-VM', '-Name', 'opvm'], ['Set-VM', '-Name', 'ro1', '-ProcessorCount', '2'], ['Remove-VM', '-Name', 'ro1', '-Force']]) {
        const r = await cliAs(token, ...args);
        assert.equal(r.code, 6, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, /operator1 is an Operator: .* needs Administrator/);
      }
      assert.equal((await d.cli('Get-VMSwitch', '-Name', 'opsw')).code, 3, 'nothing was created');
      const mine = await audit('operator1');
      assert.deepEqual(mine.slice(0, 2).map((r) => [r.Route, r.Outcome]), [['/api/v1/vms/:vm/start', 'Succeeded'], ['/api/v1/vms/:vm/stop', 'Succeeded']]);
      assert.equal(mine.filter((r) => r.Outcome === 'Denied').length, 4);
    } finally {
      await d.cli('Stop-VM', '-Name', 'ro1', '-TurnOff');
    }
  });

  test('Grant-VMConnectAccess lets a viewer open the console socket; Revoke closes it and refuses the next', async () => {
    await newVm('rc1');
    const token = await userWithToken('viewer2', 'Viewer');
    const ws = d.url.replace('http', 'ws');
    const auth = { authorization: `Bearer ${token}` };
    assert.equal(await upgradeStatus(`${ws}/api/v1/vms/rc1/serial`, auth), 403, 'no grant: refused before the VM state is even looked at');
    assert.equal((await d.api('GET', '/api/v1/vms/rc1/console', undefined, token)).status, 403, 'nor the serial log');
    assert.equal((await cliAs(token, 'Grant-VMConnectAccess', '-VMName', 'rc1', '-UserName', 'viewer2')).code, 6, 'a Viewer cannot grant itself');

    const granted = await d.cli('Grant-VMConnectAccess', '-VMName', 'rc1', '-UserName', 'viewer2', '-PassThru', '-Json');
    assert.equal(granted.code, 0, granted.stderr);
    const list = JSON.parse((await d.cli('Get-VMConnectAccess', '-VMName', 'rc1', '-Json')).stdout) as { VMName: string; UserName: string }[] | { VMName: string; UserName: string };
    assert.deepEqual([list].flat().map((g) => [g.VMName, g.UserName]), [['rc1', 'viewer2']]);
    assert.equal(await upgradeStatus(`${ws}/api/v1/vms/rc1/serial`, auth), 409, 'granted: now only the VM being Off stops it');

    assert.equal((await d.cli('Start-VM', '-Name', 'rc1')).code, 0);
    try {
      const sock = new WebSocket(`${ws}/api/v1/vms/rc1/serial`, { headers: auth });
      const closed = new Promise<number>((ok) => sock.once('close', (code) => ok(code)));
      await new Promise<void>((ok, fail) => { sock.once('open', () => ok()); sock.once('error', fail); });
      const revoked = await d.cli('Revoke-VMConnectAccess', '-VMName', 'rc1', '-UserName', 'viewer2');
      assert.equal(revoked.code, 0, revoked.stderr);
      assert.equal(await closed, 1008, 'the open console closes when access is revoked');
      assert.equal(await upgradeStatus(`${ws}/api/v1/vms/rc1/serial`, auth), 403);
      assert.equal(await upgradeStatus(`${ws}/api/v1/vms/rc1/serial`, { authorization: `Bearer ${d.token}` }), 101, 'Administrators need no grant');
    } finally {
      await d.cli('Stop-VM', '-Name', 'rc1', '-TurnOff');
    }
  });

  test('web sign-in with a user name and password: scrypt hash in a 0600 users.json, role in the session, throttled guessing', async () => {
    const pwFile = join(d.dataDir, 'pw.txt');
    await writeFile(pwFile, 'correct horse battery\n', { mode: 0o600 });
    const made = await d.cli('New-VMHostUser', '-Name', 'alice', '-Role', 'Viewer', '-PasswordFile', pwFile);
    assert.equal(made.code, 0, made.stderr);
    const usersFile = join(d.dataDir, 'users.json');
    assert.equal((await stat(usersFile)).mode & 0o777, 0o600);
    const stored = (JSON.parse(await readFile(usersFile, 'utf8')) as { Users: { Name: string; Password: Record<string, unknown> }[] }).Users.find((u) => u.Name === 'alice')!;
    assert.equal(stored.Password.Algorithm, 'scrypt');
    assert.ok((stored.Password.N as number) >= 2 ** 14 && typeof stored.Password.Salt === 'string');
    assert.ok(!(await readFile(usersFile, 'utf8')).includes('correct horse'), 'the password itself is nowhere in the file');

    const signIn = (Password: string) => fetch(d.url + '/api/v1/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ UserName: 'alice', Password }) });
    const ok = await signIn('correct horse battery');
    assert.equal(ok.status, 200);
    assert.deepEqual(pick(await ok.json() as Record<string, unknown>, 'UserName', 'Role', 'Via'), { UserName: 'alice', Role: 'Viewer', Via: 'session' });
    const cookie = ok.headers.get('set-cookie')!.split(';')[0]!;
    const me = await fetch(d.url + '/api/v1/session', { headers: { cookie } });
    assert.deepEqual(pick(await me.json() as Record<string, unknown>, 'UserName', 'Role'), { UserName: 'alice', Role: 'Viewer' });
    assert.equal((await fetch(d.url + '/api/v1/vms', { headers: { cookie } })).status, 200);
    assert.equal((await fetch(d.url + '/api/v1/vms', { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: '{"Name":"nope"}' })).status, 403);

    // A role change applies to the open session at once; so does removal.
    assert.equal((await d.cli('Set-VMHostUser', '-Name', 'alice', '-Role', 'Operator')).code, 0);
    assert.equal(((await (await fetch(d.url + '/api/v1/session', { headers: { cookie } })).json()) as { Role: string }).Role, 'Operator');

    for (let i = 0; i < 5; i++) assert.equal((await signIn(`wrong ${i}`)).status, 401);
    const throttled = await signIn('correct horse battery');
    assert.equal(throttled.status, 429, 'after 5 wrong passwords even the right one waits');
    assert.equal(((await throttled.json()) as { code: string }).code, 'TOO_MANY_SIGN_INS');
    assert.ok(Number(throttled.headers.get('retry-after')) >= 1);
    const attempts = await audit('alice');
    assert.ok(attempts.filter((r) => r.Route === '/api/v1/session' && r.Status === 401).length === 5, 'failed sign-ins are audited under the claimed name');

    assert.equal((await d.cli('Remove-VMHostUser', '-Name', 'alice')).code, 0);
    assert.equal((await fetch(d.url + '/api/v1/vms', { headers: { cookie } })).status, 401, 'a removed user\'s session ends');
  });

  test('tokens: shown once, stored hashed, revocable; the host token stays the built-in admin', async () => {
    const token = await userWithToken('script1', 'Viewer');
    assert.match(token, /^vmhu_[0-9a-f]{8}_/);
    assert.ok(!(await readFile(join(d.dataDir, 'users.json'), 'utf8')).includes(token));
    const u = JSON.parse((await d.cli('Get-VMHostUser', '-Name', 'script1', '-Json')).stdout) as { Tokens: { Id: string }[] };
    assert.equal(u.Tokens.length, 1);
    assert.equal((await d.api('GET', '/api/v1/vms', undefined, token)).status, 200);
    assert.equal((await d.cli('Remove-VMHostUserToken', '-UserName', 'script1', '-Id', u.Tokens[0]!.Id)).code, 0);
    assert.equal((await d.api('GET', '/api/v1/vms', undefined, token)).status, 401);
    const me = await d.api('GET', '/api/v1/session');
    assert.deepEqual(pick(me.json as Record<string, unknown>, 'UserName', 'Role', 'Via'), { UserName: 'admin', Role: 'Administrator', Via: 'token' });
    assert.equal((await d.cli('New-VMHostUser', '-Name', 'Admin', '-Role', 'Viewer', '-NoPassword')).code, 4, '"admin" is reserved');
  });
});

function pick(o: Record<string, unknown>, ...keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, o[k]]));
}

/** Status of a WebSocket upgrade attempt: 101 when it opened (then closed), else the HTTP status of the refusal. */
function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((ok, fail) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => { ws.close(); ok(101); });
    ws.once('unexpected-response', (req, res) => { ok(res.statusCode ?? 0); req.destroy(); });
    ws.once('error', fail);
  });
}
