/**
 * Sealing small secrets at rest (TOTP secrets, provider API keys) with AES-256-GCM.
 *
 * A sealed value is a self-describing string `v1.<keyId>.<iv>.<ciphertext>.<tag>` (base64url parts)
 * so keys can be rotated: new values are sealed with the active key, old ones still open with any
 * key left in the keyring. Associated data binds a value to its context (e.g. `mfa:totp:<userId>`),
 * so a sealed value copied onto another row refuses to open.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { AppError } from './errors.js';

const VERSION = 'v1';
const ALGORITHM = 'aes-256-gcm';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;
const PART_PATTERN = /^[A-Za-z0-9_-]*$/;
/** Sealed values are small secrets; anything bigger is not ours and is refused before decoding. */
const MAX_SEALED_LENGTH = 64 * 1024;

export interface AeadKeyring {
  /** Key id used for new seals. */
  activeKeyId: string;
  /** Every key that may still open stored values, by id; each exactly 32 bytes. */
  keys: ReadonlyMap<string, Uint8Array> | Record<string, Uint8Array>;
}

export interface Aead {
  readonly activeKeyId: string;
  seal(plaintext: string | Uint8Array, associatedData: string): string;
  /** Throws AppError('internal') when the value is malformed, the key is unknown or authentication fails. */
  open(sealed: string, associatedData: string): Buffer;
  /** Key id a sealed value was made with, for rotation jobs; null when malformed. */
  keyIdOf(sealed: string): string | null;
}

function toKeyMap(keys: AeadKeyring['keys']): Map<string, Buffer> {
  const entries: [string, Uint8Array][] =
    keys instanceof Map ? [...(keys as ReadonlyMap<string, Uint8Array>).entries()] : Object.entries(keys as Record<string, Uint8Array>);
  const map = new Map<string, Buffer>();
  for (const [id, key] of entries) {
    if (!KEY_ID_PATTERN.test(id)) {
      throw new Error(`Encryption key id "${id.slice(0, 40)}" is invalid: use 1-32 letters, digits, "_" or "-".`);
    }
    if (key.length !== KEY_BYTES) {
      throw new Error(`Encryption key "${id}" must be exactly ${KEY_BYTES} bytes (got ${key.length}); generate one with 32 random bytes.`);
    }
    // Copy so a caller zeroing or reusing its buffer cannot change ours.
    map.set(id, Buffer.from(key));
  }
  return map;
}

/** Validates the keyring once at boot; misuse (wrong key length, unknown active id) throws here, never on a request. */
export function createAead(keyring: AeadKeyring): Aead {
  const keys = toKeyMap(keyring.keys);
  const activeKey = keys.get(keyring.activeKeyId);
  if (activeKey === undefined) {
    throw new Error(`The active encryption key id "${keyring.activeKeyId.slice(0, 40)}" is not in the keyring.`);
  }
  const activeKeyId = keyring.activeKeyId;

  function fail(reason: string): never {
    throw new AppError('internal', { cause: new Error(`sealed value cannot be opened: ${reason}`) });
  }

  function split(sealed: string): [string, string, string, string, string] | null {
    if (sealed.length > MAX_SEALED_LENGTH) return null;
    const parts = sealed.split('.');
    if (parts.length !== 5) return null;
    const [version, keyId, iv, ciphertext, tag] = parts as [string, string, string, string, string];
    if (version !== VERSION || !KEY_ID_PATTERN.test(keyId)) return null;
    if (!PART_PATTERN.test(iv) || !PART_PATTERN.test(ciphertext) || !PART_PATTERN.test(tag)) return null;
    return [version, keyId, iv, ciphertext, tag];
  }

  return {
    activeKeyId,
    seal(plaintext, associatedData) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv(ALGORITHM, activeKey, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(Buffer.from(associatedData, 'utf8'));
      const data = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
      const ciphertext = Buffer.concat([cipher.update(data), cipher.final()]);
      const tag = cipher.getAuthTag();
      return [VERSION, activeKeyId, iv.toString('base64url'), ciphertext.toString('base64url'), tag.toString('base64url')].join('.');
    },
    open(sealed, associatedData) {
      const parts = split(sealed);
      if (parts === null) fail('malformed');
      const [, keyId, ivText, ciphertextText, tagText] = parts;
      const key = keys.get(keyId);
      if (key === undefined) fail('unknown key id');
      const iv = Buffer.from(ivText, 'base64url');
      const tag = Buffer.from(tagText, 'base64url');
      if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) fail('malformed');
      try {
        const decipher = createDecipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
        decipher.setAAD(Buffer.from(associatedData, 'utf8'));
        decipher.setAuthTag(tag);
        return Buffer.concat([decipher.update(Buffer.from(ciphertextText, 'base64url')), decipher.final()]);
      } catch {
        return fail('authentication failed');
      }
    },
    keyIdOf(sealed) {
      return split(sealed)?.[1] ?? null;
    },
  };
}
