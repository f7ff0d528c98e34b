// Seeded mutation fuzz of parseFrame and decodeNvgre: truncation, byte flips, lies in length
// fields. They must never throw, and a failing result must name a reason, a layer and an
// offset inside the frame. ~1-2 s by default; VMHOST_LONG=1 runs 20× longer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFrame, parseFrameInto, FrameInfo } from './classify.ts';
import { decodeNvgre, encodeNvgre } from './nvgre.ts';
import { samples } from './samples.ts';
import { seededRandom } from '../common/prng.ts';

const rng = seededRandom;

// Offsets (from the L3 start) of length-ish fields worth lying in.
const LENGTH_FIELDS = [2, 3, 4, 5, 0, 12, 40 + 1, 40 + 4, 40 + 5, 20 + 4, 20 + 5, 20 + 12, 48 + 4, 48 + 5, 40 + 24 + 1, 40 + 16 + 1, 28 + 240 + 1];

function mutate(frame: Uint8Array, r: () => number): Uint8Array {
  let b = frame.slice();
  const ops = 1 + Math.floor(r() * 3);
  for (let i = 0; i < ops; i++) {
    const k = r();
    if (k < 0.3) b = b.slice(0, Math.floor(r() * b.length));
    else if (k < 0.6 && b.length) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
    else if (k < 0.9) {
      const l3 = b[12] === 0x81 ? 18 : 14;
      const o = l3 + LENGTH_FIELDS[Math.floor(r() * LENGTH_FIELDS.length)]!;
      if (o < b.length) b[o] = [0, 1, 0xff, 0x7f, 0x80, b[o]! + 1, b[o]! - 1][Math.floor(r() * 7)]! & 0xff;
    } else {
      const extra = new Uint8Array(Math.floor(r() * 64)).map(() => Math.floor(r() * 256));
      const grown = new Uint8Array(b.length + extra.length); grown.set(b); grown.set(extra, b.length); b = grown;
    }
  }
  return b;
}

/** A view of `b` that throws on any read outside [0, length): catches silent out-of-bounds reads. */
function guarded(b: Uint8Array): Uint8Array {
  return new Proxy(b, {
    get(t, p) {
      if (typeof p === 'string' && /^-?[0-9]+$/.test(p) && (Number(p) < 0 || Number(p) >= t.length)) {
        throw new RangeError(`out-of-bounds read at ${p} of ${t.length}`);
      }
      const v: unknown = Reflect.get(t, p, t);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}

test('fuzz: parseFrame never throws and reports in-bounds offsets', () => {
  const iterations = process.env.VMHOST_LONG === '1' ? 2_000_000 : 100_000;
  const base = samples().map((s) => s.frame);
  const r = rng(0x5eed);
  const reasons = new Map<string, number>();
  const info = new FrameInfo();
  const t0 = Date.now();
  for (let i = 0; i < iterations; i++) {
    const b = mutate(base[i % base.length]!, r);
    let f: FrameInfo;
    try {
      // Every 8th frame through the bounds-checking proxy (slow), the rest at full speed.
      f = (i & 7) === 0 ? parseFrame(guarded(b)) : (i & 1) ? parseFrame(b) : parseFrameInto(b, info);
    } catch (e) {
      assert.fail(`iteration ${i} threw ${String(e)} on ${Buffer.from(b).toString('hex')}`);
    }
    if (!f.ok) {
      assert.ok(f.reason !== null && f.layer !== null, `iteration ${i}`);
      assert.ok(f.offset >= 0 && f.offset <= b.length, `iteration ${i}: offset ${f.offset} of ${b.length}`);
      reasons.set(f.reason!, (reasons.get(f.reason!) ?? 0) + 1);
    } else {
      for (const k of ['l4Offset', 'ndTargetOffset', 'greInnerOffset', 'ipSrcOffset'] as const) assert.ok(f[k] <= b.length, `${k} out of bounds at ${i}`);
      if (f.ndTargetOffset >= 0) assert.ok(f.ndTargetOffset + 16 <= b.length);
      for (const k of ['arpSha', 'ndSourceLinkAddr', 'ndTargetLinkAddr', 'dst', 'src', 'srcPort', 'greKey'] as const) assert.ok(Number.isFinite(f[k]), `${k} NaN at ${i}`);
    }
  }
  assert.ok(Date.now() - t0 < (process.env.VMHOST_LONG === '1' ? 600_000 : 5_000), 'fuzz run stayed in its time budget');
  assert.ok(reasons.size >= 12, `many drop reasons reached: ${[...reasons.keys()].join(', ')}`);
});

test('fuzz: decodeNvgre never throws; what it accepts is in bounds with a valid VSID', () => {
  const iterations = process.env.VMHOST_LONG === '1' ? 400_000 : 20_000;
  const r = rng(0x6558);
  // NVGRE frames from the encoder (customer frames of every sample, tagged outer VLAN or not), plus the non-NVGRE samples.
  const base = samples().map((s, i) => {
    const e = encodeNvgre({
      outerDst: s.frame.subarray(0, 6), outerSrc: new Uint8Array([2, 0, 0, 0, 4, 1]), providerSrc: 0xc0a80401, providerDst: 0xc0a80402,
      vsid: 4096 + i * 977, flowId: i, inner: s.frame, outerVlan: i % 3 === 0 ? 10 : undefined,
    });
    assert.ok(e.ok);
    return e.frame;
  }).concat(samples().map((s) => s.frame));
  const reasons = new Map<string, number>();
  let accepted = 0;
  for (let i = 0; i < iterations; i++) {
    const b = mutate(base[i % base.length]!, r);
    let d: ReturnType<typeof decodeNvgre>;
    try {
      d = decodeNvgre((i & 7) === 0 ? guarded(b) : b);
    } catch (e) {
      assert.fail(`iteration ${i} threw ${String(e)} on ${Buffer.from(b).toString('hex')}`);
    }
    if (!d.ok) {
      assert.ok(d.offset >= 0 && d.offset <= b.length, `iteration ${i}: offset ${d.offset} of ${b.length}`);
      reasons.set(d.reason, (reasons.get(d.reason) ?? 0) + 1);
    } else {
      accepted++;
      assert.ok(d.innerLength >= 14 && d.innerOffset + d.innerLength <= b.length, `iteration ${i}: inner frame in bounds`);
      assert.ok(d.vsid >= 4096 && d.vsid <= 0xfffffe && d.flowId >= 0 && d.flowId <= 255, `iteration ${i}: key fields`);
    }
  }
  assert.ok(accepted > 0, 'some mutations still decode');
  for (const reason of ['not-nvgre', 'bad-ipv4-checksum', 'nvgre-bad-flags', 'truncated-ipv4']) assert.ok(reasons.has(reason), `${reason} reached (${[...reasons.keys()].join(', ')})`);
});
