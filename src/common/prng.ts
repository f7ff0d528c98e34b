// One seeded generator for everything randomized that must replay from its seed: property and
// fuzz tests, crash plans, the storage tests' random I/O. mulberry32: 32 bits of state, fast,
// and good enough for test inputs (not for anything secret).

/** Seeded uint32s. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Seeded numbers in [0, 1), like Math.random. */
export function seededRandom(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
}
