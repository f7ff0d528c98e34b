// The wire format refuses what does not fit before anything is written: frames are checked
// field by field, split anywhere across reads, and a stream that ends inside a frame is an error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFrame, nonZeroUnits, parseFrame, readFrames, PIECE, type Frame } from './wire.ts';

const ID = '0b6f2c3e-1111-4222-8333-444455556666';
const drive = { id: ID, virtualSize: 1 << 26, logicalSectorSize: 512, physicalSectorSize: 4096, fileName: 'data.vhdx' };

async function* pieces(buf: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let o = 0; o < buf.length; o += size) yield buf.subarray(o, o + size);
}

test('frames survive any split across reads, payloads with them', async () => {
  const payload = Buffer.alloc(5000, 7);
  const frames: Array<[Frame, Buffer?]> = [
    [{ t: 'hello', v: 1, op: 'replicate', vmId: ID, vmName: 'vm' }],
    [{ t: 'begin', kind: 'delta', time: new Date().toISOString(), recoveryHistory: 3, compression: 'none', drives: [drive], consistency: 'ApplicationConsistent' }],
    [{ t: 'data', drive: ID, offset: 65536, length: 5120, zero: false, bytes: payload.length }, payload],
    [{ t: 'data', drive: ID, offset: 0, length: 512, zero: true, bytes: 0 }],
    [{ t: 'end' }],
  ];
  const all = Buffer.concat(frames.flatMap(([f, p]) => encodeFrame(f, p)));
  for (const size of [1, 3, 4096, all.length]) {
    const got = [];
    for await (const x of readFrames(pieces(all, size))) got.push(x);
    assert.deepEqual(got.map((x) => x.frame), frames.map(([f]) => f), `split every ${size} bytes`);
    assert.deepEqual(got[2]!.payload, payload);
    assert.equal(got[3]!.payload, undefined);
  }
  const cut = all.subarray(0, all.length - 3);
  await assert.rejects(async () => { for await (const x of readFrames(pieces(cut, 100))) void x; }, /ended inside a frame/);
});

test('malformed headers are refused with what is wrong', () => {
  const bad: Array<[unknown, RegExp]> = [
    [[], /not an object/],
    [{ t: 'nope' }, /unknown frame type/],
    [{ t: 'hello', v: 2, op: 'test' }, /version 2/],
    [{ t: 'hello', v: 1, op: 'replicate' }, /VM id and name/],
    [{ t: 'begin', kind: 'delta', time: 'yesterday', recoveryHistory: 1, compression: 'none', drives: [drive] }, /bad time/],
    [{ t: 'begin', kind: 'delta', time: new Date().toISOString(), recoveryHistory: 25, compression: 'none', drives: [drive] }, /recoveryHistory/],
    [{ t: 'begin', kind: 'delta', time: new Date().toISOString(), recoveryHistory: 1, compression: 'zstd', drives: [drive] }, /compression/],
    [{ t: 'begin', kind: 'delta', time: new Date().toISOString(), recoveryHistory: 1, compression: 'none', drives: [{ ...drive, fileName: '../etc' }] }, /malformed/],
    [{ t: 'begin', kind: 'delta', time: new Date().toISOString(), recoveryHistory: 1, compression: 'none', drives: [drive, drive] }, /twice/],
    [{ t: 'begin', kind: 'initial', time: new Date().toISOString(), recoveryHistory: 1, compression: 'none', drives: [drive] }, /carries the VM configuration/],
    [{ t: 'begin', kind: 'delta', time: new Date().toISOString(), recoveryHistory: 1, compression: 'none', drives: [drive], consistency: 'Frozen' }, /unknown consistency/],
    [{ t: 'data', drive: ID, offset: 100, length: 512, zero: false, bytes: 512 }, /not sector-aligned/],
    [{ t: 'data', drive: ID, offset: 0, length: PIECE + 512, zero: false, bytes: 512 }, /bad drive, offset, length/],
    [{ t: 'data', drive: ID, offset: 0, length: 512, zero: true, bytes: 10 }, /zero extent carries no bytes/],
    [{ t: 'data', drive: ID, offset: 0, length: 512, zero: false, bytes: 0 }, /without bytes/],
  ];
  for (const [raw, re] of bad) assert.throws(() => parseFrame(raw), (e: Error & { code?: string }) => re.test(e.message) && e.code === 'REPLICATION_PROTOCOL', JSON.stringify(raw));
});

test('a huge header length is refused before it is buffered', async () => {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(64 << 20);
  await assert.rejects(async () => { for await (const x of readFrames(pieces(b, 8))) void x; }, /a header of 67108864 bytes/);
});

test('a full copy sends only the blocks that hold data: runs of non-zero units, joined', () => {
  const b = new Uint8Array(10 * 16);
  b[0] = 1; b[17] = 1; b[5 * 16 + 15] = 1; b[9 * 16] = 1;
  assert.deepEqual(nonZeroUnits(b, 16), [[0, 32], [80, 16], [144, 16]]);
  assert.deepEqual(nonZeroUnits(new Uint8Array(40).fill(2), 16), [[0, 40]], 'a short last unit');
  assert.deepEqual(nonZeroUnits(new Uint8Array(64), 16), []);
});
