/**
 * The set of HS256 secrets keys are signed and verified with, by key id. Rotation: add a new
 * secret, make it the signing one, keep the old one for verification until its keys expire.
 * Misuse fails at construction (startup), never on a request; messages name the kid, never bytes.
 */
import { createSecretKey, type KeyObject } from 'node:crypto';
import { ConfigError } from '../../config/errors.js';
import { MIN_SECRET_BYTES } from './format.js';

const KID_PATTERN = /^[A-Za-z0-9_:.-]{1,128}$/;

/** Turns kid → raw secret into kid → KeyObject once, so no request pays for a key import. */
export function importKeySecrets(secrets: ReadonlyMap<string, Uint8Array>, configKey: string): Map<string, KeyObject> {
  if (secrets.size === 0) {
    throw ConfigError.single(configKey, 'no API key secret is configured', 'configure at least one secret of 32 random bytes or more');
  }
  const imported = new Map<string, KeyObject>();
  for (const [kid, secret] of secrets) {
    if (!KID_PATTERN.test(kid)) {
      throw ConfigError.single(configKey, `the secret id "${kid.slice(0, 40)}" is not a valid kid`, 'use 1–128 characters of A-Z a-z 0-9 _ : . -');
    }
    if (secret.byteLength < MIN_SECRET_BYTES) {
      throw ConfigError.single(configKey, `the secret "${kid}" is shorter than ${MIN_SECRET_BYTES} bytes`, `use at least ${MIN_SECRET_BYTES} random bytes`);
    }
    imported.set(kid, createSecretKey(Buffer.from(secret)));
  }
  return imported;
}
