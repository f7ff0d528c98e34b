// A set-associative exact-match table in typed arrays, in the style of Open vSwitch's
// exact-match cache: a value remembered under eight int32 key words, for the next lookup of the
// same key. The caller fills `key` and calls find() — on a miss, insert() puts a value under
// that same key. Eight ways, as acl-verdict-cache.ts found: flows taken in turn (a sender to
// many peers) thrash any set that holds more of them than it has ways. No allocation after
// construction. The values say themselves whether they still hold (a generation, entries they
// rely on): the table never invalidates anything. The switch's microflow cache
// (flow-cache.ts) and the NVGRE data path's decisions (src/hnv/decisions.ts) are kept in one.
// Depends on nothing.

const WAYS = 8;
/** Key words per slot. */
export const KEY_WORDS = 8;
/** Bit of the last key word set by the table: "slot in use" (key words are otherwise all zero-able). Callers leave it clear. */
const USED = 1 << 30;

export class ExactMatchTable<T> {
  /** The key of the next find() and insert(): the caller's to fill (bit 30 of the last word is the table's). */
  readonly key = new Int32Array(KEY_WORDS);
  private readonly keys: Int32Array;
  private readonly values: (T | null)[];
  /** The set of the last find, for the insert that follows a miss. */
  private set = 0;
  hits = 0;
  misses = 0;

  /** `slots`: a power of two, at least 8. */
  constructor(private readonly slots: number) {
    this.keys = new Int32Array(slots * KEY_WORDS);
    this.values = new Array<T | null>(slots).fill(null);
  }

  /** The value under `key`, or null. */
  find(): T | null {
    const k = this.key;
    k[7] = k[7]! | USED;
    let h = Math.imul(k[0]! ^ k[1]!, 0x9e3779b1) ^ Math.imul(k[2]!, 0x85ebca6b) ^ Math.imul(k[3]!, 0xc2b2ae35);
    h ^= Math.imul(k[4]! ^ k[7]!, 0x27d4eb2f) ^ Math.imul(k[5]! ^ k[6]!, 0x165667b1);
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    const set = (h ^ (h >>> 16)) & (this.slots - WAYS);
    this.set = set;
    const keys = this.keys;
    for (let s = set; s < set + WAYS; s++) {
      const o = s * KEY_WORDS;
      if (keys[o] === k[0] && keys[o + 2] === k[2] && keys[o + 3] === k[3] && keys[o + 1] === k[1]
        && keys[o + 4] === k[4] && keys[o + 5] === k[5] && keys[o + 6] === k[6] && keys[o + 7] === k[7]) {
        this.hits++;
        return this.values[s]!;
      }
    }
    this.misses++;
    return null;
  }

  /**
   * Remembers `value` under the key of the last find. A value of that key is replaced where it
   * is; a new key goes first in its set and moves the others one along, so the one inserted
   * longest ago is forgotten.
   */
  insert(value: T): void {
    const keys = this.keys, k = this.key, set = this.set;
    let at = -1;
    for (let s = set; s < set + WAYS && at < 0; s++) {
      const o = s * KEY_WORDS;
      let same = true;
      for (let i = 0; i < KEY_WORDS && same; i++) same = keys[o + i] === k[i];
      if (same) at = s;
    }
    if (at < 0) {
      at = set;
      keys.copyWithin((set + 1) * KEY_WORDS, set * KEY_WORDS, (set + WAYS - 1) * KEY_WORDS);
      for (let s = set + WAYS - 1; s > set; s--) this.values[s] = this.values[s - 1]!;
      keys.set(k, set * KEY_WORDS);
    }
    this.values[at] = value;
  }
}
