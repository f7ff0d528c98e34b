// The REST API without guests: authentication, validation, the OpenAPI contract, and VM
// records that survive a daemon restart.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestDaemon } from './support/daemon.ts';

describe('REST API', () => {
  let d: TestDaemon;
  before(async () => { d = await TestDaemon.start(); });
  after(async () => { await d?.stop(); });

  test('every route refuses a request without the token (401), the OpenAPI document too', async () => {
    for (const [method, path] of [['GET', '/api/v1/vms'], ['GET', '/api/v1/host'], ['POST', '/api/v1/vms'], ['GET', '/api/v1/openapi.json'], ['GET', '/api/v1/events/stream'], ['GET', '/nope']]) {
      assert.equal((await d.api(method!, path!, undefined, null)).status, 401, `${method} ${path} without token`);
      assert.equal((await d.api(method!, path!, undefined, 'wrong-token')).status, 401, `${method} ${path} with a wrong token`);
    }
  });

  test('the OpenAPI document lists exactly the routes the server answers', async () => {
    const doc = (await d.api('GET', '/api/v1/openapi.json')).json as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)).sort();
    for (const route of ['POST /api/v1/vms', 'GET /api/v1/vms/{vm}', 'POST /api/v1/vms/{vm}/start', 'POST /api/v1/vms/{vm}/stop', 'POST /api/v1/vms/{vm}/invoke', 'GET /api/v1/events']) {
      assert.ok(documented.includes(route), `${route} is documented`);
    }
    // Each documented route answers (with a 4xx for a made-up VM, never 404-route-not-found).
    for (const r of documented) {
      const [method, path] = r.split(' ') as [string, string];
      if (path.endsWith('/events/stream')) continue; // never ends; covered by the event-stream test
      const res = await d.api(method, path.replace('{vm}', 'no-such-vm').replace('{id}', '00000000-0000-0000-0000-000000000000'), method === 'GET' || method === 'DELETE' ? undefined : {});
      assert.notEqual((res.json as { message?: string } | undefined)?.message?.startsWith('Route '), true, `${r} is routed`);
    }
  });

  test('the event stream pushes host events as they happen', async () => {
    const ac = new AbortController();
    const res = await fetch(`${d.url}/api/v1/events/stream`, { headers: { authorization: `Bearer ${d.token}` }, signal: ac.signal });
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const reader = res.body!.getReader();
    await d.api('POST', '/api/v1/vms', { Name: 'streamed' });
    let text = '';
    while (!text.includes('VM_CREATED')) text += new TextDecoder().decode((await reader.read()).value);
    assert.match(text, /event: host\ndata: .*"VMName":"streamed"/);
    ac.abort();
    await d.api('DELETE', '/api/v1/vms/streamed');
  });

  test('bad requests get a one-line error naming the parameter and change nothing', async () => {
    const cases: [unknown, RegExp][] = [
      [{ Name: 'x', MemoryStartupBytes: 3 * 1024 * 1024 }, /MemoryStartupBytes.*minimum of 32 MB/],
      [{ Name: 'x', MemoryStartupBytes: 33 * 1024 * 1024 }, /MemoryStartupBytes.*multiple of 2 MB/],
      [{ Name: 'x', Bogus: 1 }, /unknown parameter 'Bogus'/],
      [{ Name: 'x', Generation: 3 }, /Generation/],
      [{ Name: 'x', MemoryStartupBytes: '256' }, /MemoryStartupBytes/],
      [{ Name: 'bad*name' }, /Name.*not allowed/],
      [{}, /missing required parameter 'Name'/],
    ];
    for (const [body, re] of cases) {
      const r = await d.api('POST', '/api/v1/vms', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match((r.json as { message: string }).message, re);
    }
    assert.deepEqual((await d.api('GET', '/api/v1/vms')).json, []);
  });

  test('New-VM, duplicate name refused, Set-VM, restart keeps the record, Remove-VM', async () => {
    const created = await d.api('POST', '/api/v1/vms', { Name: 'api1', MemoryStartupBytes: 256 * 1024 * 1024, Generation: 2 });
    assert.equal(created.status, 201);
    const vm = created.json as { Id: string; State: string; Generation: number; MemoryStartup: number };
    assert.equal(vm.State, 'Off');
    assert.equal(vm.Generation, 2);
    const dup = await d.api('POST', '/api/v1/vms', { Name: 'API1' });
    assert.equal(dup.status, 409);
    assert.match((dup.json as { message: string }).message, /already exists/);
    const set = await d.api('PATCH', `/api/v1/vms/${vm.Id}`, { Notes: 'web tier', MemoryStartupBytes: 512 * 1024 * 1024 });
    assert.equal(set.status, 200, set.text);
    await d.kill();
    await d.launch();
    const again = (await d.api('GET', '/api/v1/vms/api1')).json as { Id: string; Notes: string; MemoryStartup: number };
    assert.equal(again.Id, vm.Id);
    assert.equal(again.Notes, 'web tier');
    assert.equal(again.MemoryStartup, 512 * 1024 * 1024);
    assert.equal((await d.api('DELETE', `/api/v1/vms/${vm.Id}`)).status, 204);
    assert.equal((await d.api('GET', `/api/v1/vms/${vm.Id}`)).status, 404);
  });

  test('actions illegal in the current state are refused with the state named', async () => {
    await d.api('POST', '/api/v1/vms', { Name: 'off1' });
    for (const verb of ['suspend', 'resume', 'save', 'restart']) {
      const r = await d.api('POST', `/api/v1/vms/off1/${verb}`);
      assert.equal(r.status, 409, verb);
      assert.match((r.json as { message: string }).message, /because it is Off/);
    }
    const stop = await d.api('POST', '/api/v1/vms/off1/stop', {});
    assert.equal(stop.status, 409);
  });

  // Names are checked and taken under one lock: ten clients racing for a name (in every case
  // spelling) leave exactly one VM or switch, and nine "already exists" refusals.
  test('ten parallel New-VM and New-VMSwitch with one name: exactly one succeeds', async () => {
    for (const [path, name, body] of [
      ['/api/v1/vms', 'race1', (n: string) => ({ Name: n })],
      ['/api/v1/switches', 'RaceNet', (n: string) => ({ Name: n, SwitchType: 'Private' })],
    ] as const) {
      const spellings = Array.from({ length: 10 }, (_, i) => (i % 2 ? name.toUpperCase() : name));
      const results = await Promise.all(spellings.map((n) => d.api('POST', path, body(n))));
      const statuses = results.map((r) => r.status).sort();
      assert.deepEqual(statuses, [201, ...Array(9).fill(409)], `${path}: ${results.map((r) => r.text).join(' | ')}`);
      for (const r of results.filter((x) => x.status === 409)) assert.match((r.json as { message: string }).message, /already exists/);
      const listed = ((await d.api('GET', path)).json as { Name: string }[]).filter((x) => x.Name.toLowerCase() === name.toLowerCase());
      assert.equal(listed.length, 1, `${path} lists one '${name}'`);
    }
  });
});
