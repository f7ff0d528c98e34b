// A crafted log must not freeze the event loop: the open of a VHDX whose 16 MiB log is
// filled with fake entries (every sector a 'loge' header claiming the whole log, or the
// log tiled with well-formed entries whose checksums are wrong) blocks the loop for well
// under a second (issue 16, item 9). The block is measured with monitorEventLoopDelay and
// printed; the assertion is the acceptance bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { MemoryFile } from '../blockio/memory-file.ts';
import { isVmhostError } from '../common/errors.ts';
import { createVhdx, openVhdx } from './index.ts';
import { keepOpen } from './testing.ts';
import { LOG_SECTOR, MiB, SIG_DATA, SIG_DESC, SIG_LOGE, put32, put64, put64big, putAscii, roundUp } from './format.ts';
import { readCurrentHeader, HeaderState } from './header.ts';
import { newGuid, writeGuid } from './guid.ts';

const LOG = Number(process.env.LOG_SCAN_MIB ?? 16) * MiB;

/** A VHDX whose header points at a 16 MiB log at the end of the file, filled by `fill`. */
async function craft(fill: (log: Uint8Array, logGuid: string) => void): Promise<MemoryFile> {
  const f = new MemoryFile('crafted-log.vhdx');
  await createVhdx(f, { type: 'Dynamic', virtualSize: 64 * MiB, blockSize: MiB });
  const logOffset = roundUp(await f.size(), MiB);
  const logGuid = newGuid();
  const log = new Uint8Array(LOG);
  fill(log, logGuid);
  await f.write(log, logOffset);
  const cur = await readCurrentHeader(f);
  await new HeaderState(cur.header, cur.slot).update(f, { logOffset, logLength: LOG, logGuid });
  return f;
}

/** Every sector: an entry header claiming the whole log (the old scan CRC'd 16 MiB per sector). */
function everySectorClaimsAll(log: Uint8Array, logGuid: string): void {
  for (let at = 0; at < log.length; at += LOG_SECTOR) {
    putAscii(log, at, SIG_LOGE);
    put32(log, at + 8, log.length);
    put32(log, at + 12, 0);
    put64big(log, at + 16, BigInt(at / LOG_SECTOR + 1));
    put32(log, at + 24, 0);
    writeGuid(log, at + 32, logGuid);
  }
}

/** Well-formed two-sector entries (one data descriptor), each with a wrong checksum. */
function wellFormedBadChecksums(log: Uint8Array, logGuid: string): void {
  for (let at = 0, seq = 1n; at < log.length; at += 2 * LOG_SECTOR, seq++) {
    putAscii(log, at, SIG_LOGE);
    put32(log, at + 4, 0xdeadbeef);
    put32(log, at + 8, 2 * LOG_SECTOR);
    put32(log, at + 12, 0);
    put64big(log, at + 16, seq);
    put32(log, at + 24, 1);
    writeGuid(log, at + 32, logGuid);
    putAscii(log, at + 64, SIG_DESC);
    put64(log, at + 64 + 16, 2 * MiB);
    put64big(log, at + 64 + 24, seq);
    const ds = at + LOG_SECTOR;
    putAscii(log, ds, SIG_DATA);
    put32(log, ds + 4, Number(seq >> 32n));
    put32(log, ds + 4092, Number(seq & 0xffffffffn));
  }
}

for (const [name, fill] of [['every sector claims the whole log', everySectorClaimsAll], ['well-formed entries, wrong checksums', wellFormedBadChecksums]] as const) {
  test(`crafted 16 MiB log (${name}): the open blocks the event loop < 1 s`, async () => {
    const f = await craft(fill);
    for (const readOnly of [true, false]) {
      const h = monitorEventLoopDelay({ resolution: 10 });
      h.enable();
      // A second, plain measure: the longest gap between ticks of a 5 ms interval.
      let last = performance.now(), maxGap = 0;
      const ticker = setInterval(() => {
        const now = performance.now();
        maxGap = Math.max(maxGap, now - last);
        last = now;
      }, 5);
      // The first delay sample needs a running timer: start it before the open.
      await new Promise((r) => setTimeout(r, 30));
      const t0 = performance.now();
      let outcome = 'opened';
      try {
        const d = await openVhdx(keepOpen(f), { readOnly });
        await d.close();
      } catch (e) {
        assert.ok(isVmhostError(e), `only typed errors: ${String(e)}`);
        outcome = (e as { code: string }).code;
      }
      const wall = performance.now() - t0;
      // Let the delay timer fire once more so a block at the very end is recorded.
      await new Promise((r) => setTimeout(r, 30));
      h.disable();
      clearInterval(ticker);
      const maxBlockMs = Math.max(h.max / 1e6, maxGap);
      console.log(`log scan (${name}, ${readOnly ? 'read-only' : 'read-write'}): ${outcome}; longest event-loop block ${maxBlockMs.toFixed(1)} ms (${h.count} samples), open took ${wall.toFixed(1)} ms`);
      assert.ok(maxBlockMs < 1000, `event loop blocked ${maxBlockMs.toFixed(0)} ms (acceptance bound 1 s)`);
    }
  });
}
