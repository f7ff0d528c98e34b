// Password hashing with scrypt (node:crypto), a memory-hard KDF. Each hash stores its own
// salt and cost parameters, so raising the cost later leaves old hashes verifiable.
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export interface PasswordHash {
  Algorithm: 'scrypt';
  /** CPU/memory cost (a power of two), block size, parallelism. */
  N: number;
  r: number;
  p: number;
  /** base64 */
  Salt: string;
  /** base64, the derived key */
  Hash: string;
}

/** 2^15 × 8 × 128 B = 32 MiB of memory per hash: about 0.1 s here, slow for a guesser. */
const COST = { N: 2 ** 15, r: 8, p: 1 } as const;
const KEY_BYTES = 32;
const SALT_BYTES = 16;

function derive(password: string, salt: Buffer, c: { N: number; r: number; p: number }): Promise<Buffer> {
  const opts: ScryptOptions = { N: c.N, r: c.r, p: c.p, maxmem: 256 * c.N * c.r + 1024 * 1024 };
  return new Promise((ok, fail) => scrypt(password.normalize('NFC'), salt, KEY_BYTES, opts, (e, key) => (e ? fail(e) : ok(key))));
}

export async function hashPassword(password: string): Promise<PasswordHash> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, COST);
  return { Algorithm: 'scrypt', ...COST, Salt: salt.toString('base64'), Hash: key.toString('base64') };
}

export async function verifyPassword(password: string, h: PasswordHash): Promise<boolean> {
  if (h.Algorithm !== 'scrypt') return false;
  const want = Buffer.from(h.Hash, 'base64');
  const got = await derive(password, Buffer.from(h.Salt, 'base64'), h);
  return got.length === want.length && timingSafeEqual(got, want);
}

/**
 * Spends as long as a real check: a sign-in for an unknown user or one without a password
 * must not answer faster than a wrong password, or timing tells which names exist.
 */
let dummy: Promise<PasswordHash> | undefined;
export async function verifyNothing(password: string): Promise<false> {
  dummy ??= hashPassword('no user has this password');
  await verifyPassword(password, await dummy);
  return false;
}
