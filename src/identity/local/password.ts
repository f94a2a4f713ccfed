/**
 * Password hashing with argon2id. The parameters default to the OWASP baseline (19 MiB, 2 passes,
 * 1 lane); tests pass cheaper ones. Passwords are NFKC-normalised so the same password typed on
 * different keyboards hashes the same, and bounded before any hashing so a huge body cannot turn
 * into a CPU/memory attack.
 */
import argon2 from 'argon2';
import { randomBase64Url } from '../../core/crypto.js';

export interface PasswordHashParams {
  /** KiB of memory per hash. */
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

export const OWASP_ARGON2ID: PasswordHashParams = { memoryCost: 19_456, timeCost: 2, parallelism: 1 };
/** Only for tests: fast, and still argon2id so the code path is the real one. */
export const TEST_ARGON2ID: PasswordHashParams = { memoryCost: 1024, timeCost: 1, parallelism: 1 };

/** Longest password (in characters) accepted anywhere, checked before hashing. */
export const MAX_PASSWORD_LENGTH = 256;
const ARGON2ID_PHC_PREFIX = '$argon2id$';

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** False for a wrong password, an over-long one, or a stored hash that is not argon2id. */
  verify(storedHash: string, password: string): Promise<boolean>;
  /**
   * Spends the same time as a real verify and always returns false: called when the account does
   * not exist (or has no password) so response timing does not reveal which emails are registered.
   */
  verifyDummy(password: string): Promise<false>;
  /** True when a stored hash was made with other parameters; re-hash it at the next successful sign-in. */
  needsRehash(storedHash: string): boolean;
}

export function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

export function createPasswordHasher(params: PasswordHashParams = OWASP_ARGON2ID): PasswordHasher {
  if (params.memoryCost < 1024 || params.timeCost < 1 || params.parallelism < 1) {
    throw new Error('Password hashing parameters are too weak: memoryCost >= 1024 KiB, timeCost >= 1, parallelism >= 1.');
  }
  const options = { type: argon2.argon2id as 2, ...params, raw: false as const };
  let dummyHash: Promise<string> | null = null;

  async function verify(storedHash: string, password: string): Promise<boolean> {
    if (password.length > MAX_PASSWORD_LENGTH) return false;
    // Explicit allow-list: only argon2id hashes are accepted, whatever else might be in the column.
    if (!storedHash.startsWith(ARGON2ID_PHC_PREFIX)) return false;
    try {
      return await argon2.verify(storedHash, normalizePassword(password));
    } catch {
      return false;
    }
  }

  return {
    async hash(password) {
      if (password.length > MAX_PASSWORD_LENGTH) throw new Error('password exceeds the maximum length');
      return argon2.hash(normalizePassword(password), options);
    },
    verify,
    needsRehash(storedHash) {
      if (!storedHash.startsWith(ARGON2ID_PHC_PREFIX)) return true;
      try {
        return argon2.needsRehash(storedHash, params);
      } catch {
        return true;
      }
    },
    async verifyDummy(password) {
      // The dummy hash is made once with the current parameters, from a random value nobody knows.
      // Over-long input returns early in verify too, so both paths take the same (short) time.
      if (password.length > MAX_PASSWORD_LENGTH) return false;
      dummyHash ??= argon2.hash(randomBase64Url(32), options);
      await verify(await dummyHash, password);
      return false;
    },
  };
}
