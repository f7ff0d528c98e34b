import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ramBlocksOf, ramPadOf } from './state-ram-layout.ts';

/** The head QEMU 7.2 writes (bytes as seen in a real `migrate` of `-m 262148K`), built field by field. */
function head(blocks: Array<[string, number]>, opts: { flag?: boolean; total?: number } = {}): Buffer {
  const be32 = (n: number) => { const x = Buffer.alloc(4); x.writeUInt32BE(n); return x; };
  const be64 = (n: number | bigint) => { const x = Buffer.alloc(8); x.writeBigUInt64BE(BigInt(n)); return x; };
  const str = (s: string) => Buffer.concat([Buffer.from([s.length]), Buffer.from(s, 'latin1')]);
  const total = opts.total ?? blocks.reduce((s, [, n]) => s + n, 0);
  return Buffer.concat([
    Buffer.from('QEVM'), be32(3),
    Buffer.from([0x07]), be32(13), Buffer.from('pc-i440fx-7.2'),
    Buffer.from([0x01]), be32(2), str('ram'), be32(0), be32(4),
    be64(BigInt(total) | (opts.flag === false ? 0n : 4n)),
    ...blocks.flatMap(([id, n]) => [str(id), be64(n)]),
    Buffer.alloc(64),
  ]);
}

const MiB = 1024 * 1024;

test('a padded TCG state: pc.ram 256 MiB + 4 KiB among the ROM blocks', () => {
  const blocks = ramBlocksOf(head([['pc.ram', 256 * MiB + 4096], ['/rom@etc/acpi/tables', 0x20000], ['pc.bios', 0x40000], ['pc.rom', 0x20000]]));
  assert.equal(blocks?.get('pc.ram'), 256 * MiB + 4096);
  assert.equal(ramPadOf(blocks!), 4096);
});

test('a state from before the pad (or KVM) restores unpadded; NUMA nodes must agree', () => {
  assert.equal(ramPadOf(ramBlocksOf(head([['pc.ram', 512 * MiB], ['pc.bios', 0x40000]]))!), 0);
  assert.equal(ramPadOf(ramBlocksOf(head([['ram-node0', 128 * MiB + 4096], ['ram-node1', 128 * MiB + 4096]]))!), 4096);
  assert.equal(ramPadOf(ramBlocksOf(head([['ram-node0', 128 * MiB + 4096], ['ram-node1', 128 * MiB]]))!), undefined);
  assert.equal(ramPadOf(ramBlocksOf(head([['virtio-mem0-mem', 1024 * MiB]]))!), undefined, 'no main RAM block');
});

test('what is not a readable layout gives undefined, never a guess', () => {
  assert.equal(ramBlocksOf(Buffer.from('not a state file at all')), undefined);
  assert.equal(ramBlocksOf(head([['pc.ram', 256 * MiB]], { flag: false })), undefined, 'no MEM_SIZE flag');
  assert.equal(ramBlocksOf(head([['pc.ram', 256 * MiB]], { total: 300 * MiB }).subarray(0, 80)), undefined, 'lengths short of the total');
  const h = head([['pc.ram', 256 * MiB]]);
  assert.equal(ramBlocksOf(h.subarray(0, h.length - 70)), undefined, 'cut inside the block list');
});
