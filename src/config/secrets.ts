/**
 * Secrets are given by reference — an environment variable or a file — never inline, so a config
 * file can be committed or printed without leaking anything. Resolved once at start; a missing or
 * short secret stops the gateway there, not at the first request.
 */
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from './errors.js';

export const secretRefSchema = z.union([
  z.object({ env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name like MY_SECRET') }).strict(),
  z.object({ file: z.string().min(1).max(4096) }).strict(),
]);

export type SecretRef = z.infer<typeof secretRefSchema>;

/** A resolved secret. toString/toJSON never reveal the value, so logging the config is harmless. */
export class Secret {
  readonly #value: Buffer;
  constructor(value: Buffer, readonly source: string) {
    this.#value = value;
  }
  bytes(): Buffer {
    return this.#value;
  }
  toString(): string {
    return `[secret from ${this.source}]`;
  }
  toJSON(): string {
    return this.toString();
  }
}

export const MIN_SECRET_BYTES = 32;

function describe(ref: SecretRef): string {
  return 'env' in ref ? `environment variable ${ref.env}` : `file ${ref.file}`;
}

export function resolveSecret(key: string, ref: SecretRef, baseDir: string, env: NodeJS.ProcessEnv): Secret {
  let raw: string | undefined;
  if ('env' in ref) {
    raw = env[ref.env];
    if (raw === undefined || raw.trim() === '') {
      throw ConfigError.single(key, `${describe(ref)} is not set`, `export ${ref.env}=<at least ${MIN_SECRET_BYTES} random bytes, e.g. from \`openssl rand -base64 32\`>`);
    }
  } else {
    const path = isAbsolute(ref.file) ? ref.file : resolve(baseDir, ref.file);
    try {
      if (statSync(path).size > 64 * 1024) throw ConfigError.single(key, `${describe(ref)} is larger than 64 KiB`, 'point it at a file holding only the secret');
      raw = readFileSync(path, 'utf8');
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      throw ConfigError.single(key, `${describe(ref)} cannot be read (resolved to ${path})`, 'create the file (mode 0600) or fix the path; `portcullis init` writes one');
    }
  }
  const value = Buffer.from(raw.trim(), 'utf8');
  if (value.length < MIN_SECRET_BYTES) {
    throw ConfigError.single(key, `${describe(ref)} holds fewer than ${MIN_SECRET_BYTES} bytes`, `use at least ${MIN_SECRET_BYTES} random bytes, e.g. \`openssl rand -base64 32\``);
  }
  return new Secret(value, describe(ref));
}
