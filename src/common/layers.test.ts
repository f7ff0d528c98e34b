// Fails when a module imports a module of a higher layer (ARCHITECTURE.md, "layers").
// A folder under src/ that is not in the map is itself an error, so new modules must be placed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const LAYER: Record<string, number> = {
  common: 0, blockio: 0,
  vhd: 1, packet: 1,
  storage: 2, switch: 2,
  // hnv above switch: its NVGRE data path is a switch extension.
  qemu: 3, guest: 3, hnv: 3,
  host: 4,
  migration: 5, replica: 5, backup: 5, cluster: 5,
  api: 6, cli: 6, web: 6,
};
// Same-layer imports that are allowed on purpose, with the reason.
const ALLOWED_SAME_LAYER = new Set([
  'cli->api', // the CLI validates with the API's own schemas and speaks its routes
  'web->api', // the web console shares the API's schemas and token check
  'api->web', // the daemon's HTTP server mounts the web console (server.ts only; web never imports server.ts)
  'blockio->common', // crash-file.ts's fault plans draw from common's one seeded generator (prng.ts); blockio needs nothing else of common
]);

const src = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function* files(dir: string): Generator<string> {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) yield* files(p);
    else if (/\.(ts|tsx)$/.test(e)) yield p;
  }
}

test('every src module is placed in a layer and imports only downward', () => {
  const problems: string[] = [];
  for (const mod of readdirSync(src)) {
    if (!statSync(join(src, mod)).isDirectory()) continue;
    if (!(mod in LAYER)) { problems.push(`src/${mod} is in no layer`); continue; }
    for (const f of files(join(src, mod))) {
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
        const target = relative(src, resolve(dirname(f), m[1]!)).split('/')[0]!;
        if (target === mod || target.startsWith('..')) continue;
        const from = LAYER[mod]!, to = LAYER[target];
        if (to === undefined) { problems.push(`${relative(src, f)} imports unknown module ${target}`); continue; }
        if (to > from || (to === from && !ALLOWED_SAME_LAYER.has(`${mod}->${target}`))) {
          problems.push(`${relative(src, f)} (${mod}, layer ${from}) imports ${target} (layer ${to})`);
        }
      }
    }
  }
  assert.deepEqual(problems, []);
});
