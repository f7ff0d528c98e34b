// The RAM blocks a QEMU state file was saved with, read from the head of its migration stream,
// so a saved VM restores into the memory layout it left: QEMU refuses a state whose RAM block
// lengths differ from the machine's ("Length mismatch"). It matters since command-line.ts pads
// TCG RAM by 4 KiB (TCG_RAM_PAD): a state saved before the pad, or by a KVM host, has whole-MiB
// blocks, and must not lose its VM to an upgrade.
// Stream layout (QEMU 7.2 savevm.c/ram.c): "QEVM", be32 version, the configuration section,
// then the first SECTION_START (0x01, be32 id, u8 len + "ram", be32 instance, be32 version),
// whose payload opens with be64 (total bytes | RAM_SAVE_FLAG_MEM_SIZE) and then, per block,
// u8 len + idstr + be64 used length — until the lengths add up to the total.
// Depends on: nothing (pure).

const MiB = 1024 * 1024;
const MEM_SIZE_FLAG = 0x04n;
/** Flags live in the low bits of the total (page-aligned): QEMU's RAM_SAVE_FLAG_* are < 0x200. */
const FLAG_MASK = 0x1ffn;
const RAM_SECTION = Buffer.from([0x03, 0x72, 0x61, 0x6d]); // u8 3, "ram"

/** Block id → length in bytes; undefined when the head does not hold a RAM section we can read. */
export function ramBlocksOf(head: Uint8Array): Map<string, number> | undefined {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.length < 8 || b.toString('latin1', 0, 4) !== 'QEVM') return undefined;
  // The configuration section before it has subsections of varying shape: find the RAM section
  // start by its marker, and trust it only when the block list adds up exactly to the total.
  for (let at = b.indexOf(RAM_SECTION, 8); at >= 5; at = b.indexOf(RAM_SECTION, at + 1)) {
    if (b[at - 5] !== 0x01) continue;
    const blocks = readBlocks(b, at + RAM_SECTION.length + 8);
    if (blocks) return blocks;
  }
  return undefined;
}

function readBlocks(b: Buffer, pos: number): Map<string, number> | undefined {
  if (pos + 8 > b.length) return undefined;
  const word = b.readBigUInt64BE(pos);
  if ((word & MEM_SIZE_FLAG) === 0n) return undefined;
  const total = word & ~FLAG_MASK;
  let sum = 0n;
  const out = new Map<string, number>();
  for (let p = pos + 8; sum < total;) {
    if (p >= b.length) return undefined;
    const len = b[p]!;
    if (len === 0 || p + 1 + len + 8 > b.length) return undefined;
    const id = b.toString('latin1', p + 1, p + 1 + len);
    const size = b.readBigUInt64BE(p + 1 + len);
    out.set(id, Number(size));
    sum += size;
    p += 1 + len + 8;
  }
  return sum === total ? out : undefined;
}

/**
 * How far past a whole MiB the guest's main RAM blocks were ("pc.ram", or each NUMA node's
 * "ram-nodeN"): the pad the restoring QEMU must use. Undefined when the layout is unreadable.
 */
export function ramPadOf(blocks: Map<string, number>): number | undefined {
  const main = [...blocks].filter(([id]) => id === 'pc.ram' || /^ram-node\d+$/.test(id)).map(([, n]) => n % MiB);
  if (main.length === 0 || main.some((p) => p !== main[0])) return undefined;
  return main[0];
}
