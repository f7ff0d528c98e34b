// Where the real-world disk samples are (../shared/testdata/vhd beside the checkout, or the
// workplace's /work/shared), for the sample tests of both engines. Missing samples skip those
// tests on a developer's machine; under CI they fail (`skipUnlessCi`), never skip silently.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const checkout = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const candidates = [resolve(checkout, '../shared/testdata/vhd'), '/work/shared/testdata/vhd'];

/** The samples directory holding `probe`, if any. */
export function samplesDir(probe: string): string | undefined {
  return candidates.find((p) => existsSync(resolve(p, probe)));
}

/** node:test's `skip` for tests that need the samples: a reason outside CI, false under CI (the test then fails on the missing file). */
export function skipUnlessCi(dir: string | undefined): string | false {
  return dir === undefined && process.env.CI !== 'true' ? `samples not found in ${candidates.join(' or ')}` : false;
}
