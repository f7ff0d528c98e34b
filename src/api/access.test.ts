// The route → role table is complete: every route the server registers is listed (a new
// route fails here until its author picks a role), nothing stale is listed, and a route
// missing from the table needs Administrator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Host } from '../host/index.ts';
import { registeredRoutes } from './access.ts';
import { requiredAccess, ROUTE_ACCESS } from './route-roles.ts';
import { buildServer } from './server.ts';

test('every registered route is in ROUTE_ACCESS and every entry is a route; unlisted routes need Administrator', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vmhost-access-'));
  const host = { dataDir: dir, facts: { computerName: 'h', vmhostVersion: '0' }, network: { hostNics: {} } } as unknown as Host;
  const app = await buildServer({ host, token: 'admin-token' });
  try {
    await app.ready();
    const routes = new Set(registeredRoutes(app).map((r) => r.replace(/^HEAD /, 'GET ')));
    assert.deepEqual([...routes].filter((r) => !(r in ROUTE_ACCESS)), [], 'routes missing from src/api/route-roles.ts');
    assert.deepEqual(Object.keys(ROUTE_ACCESS).filter((r) => !routes.has(r)), [], 'table entries with no route');
    assert.equal(requiredAccess('POST', '/api/v1/not-in-the-table'), 'Administrator');
  } finally {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  }
});
