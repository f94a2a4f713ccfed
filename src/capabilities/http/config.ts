/**
 * The `capabilities:` configuration section and its resolution at start. The section is optional:
 * without it the broker is off and no route exists. With it, every key and credential secret must
 * resolve, or the start stops with the offending key named (never the value).
 */
import { hkdfSync } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import { z } from 'zod';
import { ConfigError, type ConfigProblem } from '../../config/errors.js';
import { resolveSecret, secretRefSchema, type Secret } from '../../config/secrets.js';
import { MAX_CAPABILITY_LIFETIME_MS } from '../claims.js';
import { CapabilityKeyring, CapabilityKeyringError, KEY_ID_PATTERN } from '../keyring.js';

const addressOrCidr = z.string().refine((value) => {
  const [address, bits, extra] = value.split('/');
  if (address === undefined || extra !== undefined || isIP(address) === 0) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (isIP(address) === 4 ? 32 : 128);
}, 'must be an IP address or CIDR such as 10.0.0.0/8');

const credentialRefName = z.string().regex(/^[A-Za-z0-9._:-]{1,256}$/, 'credential names use [A-Za-z0-9._:-]');

export const capabilitiesConfigSchema = z
  .object({
    keys: z
      .array(
        z
          .object({
            id: z.string().regex(KEY_ID_PATTERN, 'key ids are 1-32 characters of [A-Za-z0-9_-]'),
            secret: secretRefSchema,
            createdAt: z.iso.datetime(),
            retiredAt: z.iso.datetime().optional(),
          })
          .strict(),
      )
      .min(1)
      .max(16),
    maxLifetimeMinutes: z.number().int().min(1).max(MAX_CAPABILITY_LIFETIME_MS / 60_000).default(60),
    /** Hosts grants may target over plain http (local development only). */
    devHttpHosts: z.array(z.string().min(1).max(253)).max(32).default([]),
    /** Socket peers (the platform's sandbox proxies) whose `x-portcullis-container` header is believed. */
    trustedHops: z.array(addressOrCidr).max(64).default([]),
    egress: z
      .object({
        allowLoopback: z.boolean().default(false),
        allowPrivate: z.boolean().default(false),
        timeoutMs: z.number().int().min(100).max(600_000).default(60_000),
      })
      .strict()
      .prefault({}),
    /** Named references to the real upstream secrets the broker injects. */
    credentials: z.record(credentialRefName, z.object({ secret: secretRefSchema }).strict()).default({}),
  })
  .strict();

export type CapabilitiesConfig = z.infer<typeof capabilitiesConfigSchema>;

/** Decides whether a socket peer is one of the configured trusted hops. */
export class TrustedHops {
  private readonly list = new BlockList();
  readonly empty: boolean;

  constructor(entries: readonly string[]) {
    this.empty = entries.length === 0;
    for (const entry of entries) {
      const [address = '', bits] = entry.split('/');
      const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.list.addAddress(address, type);
      else this.list.addSubnet(address, Number(bits), type);
    }
  }

  includes(peer: string | undefined): boolean {
    if (peer === undefined || this.empty) return false;
    // An IPv4 peer on a dual-stack socket is reported as ::ffff:a.b.c.d.
    const plain = peer.startsWith('::ffff:') && isIP(peer.slice(7)) === 4 ? peer.slice(7) : peer;
    const family = isIP(plain);
    if (family === 0) return false;
    return this.list.check(plain, family === 6 ? 'ipv6' : 'ipv4');
  }
}

export interface CapabilityRuntimeConfig {
  keyring: CapabilityKeyring;
  maxLifetimeMs: number;
  credentials: ReadonlyMap<string, Secret>;
  devHttpHosts: readonly string[];
  trustedHops: TrustedHops;
  egress: { allowLoopback: boolean; allowPrivate: boolean; timeoutMs: number };
}

/** Keys are derived from the configured secret, so any secret of at least 32 bytes serves. */
function deriveKey(secret: Secret, id: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', secret.bytes(), Buffer.alloc(0), `portcullis capability key v1 ${id}`, 32));
}

export function resolveCapabilityConfig(section: CapabilitiesConfig, options: { baseDir: string; env: NodeJS.ProcessEnv }): CapabilityRuntimeConfig {
  const problems: ConfigProblem[] = [];
  const attempt = <T>(fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (error) {
      if (error instanceof ConfigError) problems.push(...error.problems);
      else throw error;
      return undefined;
    }
  };
  const keys = section.keys.map((key, index) => {
    const secret = attempt(() => resolveSecret(`capabilities.keys[${index}].secret`, key.secret, options.baseDir, options.env));
    return secret === undefined
      ? undefined
      : {
          id: key.id,
          secret: deriveKey(secret, key.id),
          createdAt: Date.parse(key.createdAt),
          ...(key.retiredAt === undefined ? {} : { retiredAt: Date.parse(key.retiredAt) }),
        };
  });
  const credentials = new Map<string, Secret>();
  for (const [name, entry] of Object.entries(section.credentials)) {
    const secret = attempt(() => resolveSecret(`capabilities.credentials.${name}.secret`, entry.secret, options.baseDir, options.env));
    if (secret !== undefined) credentials.set(name, secret);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const maxLifetimeMs = section.maxLifetimeMinutes * 60_000;
  let keyring: CapabilityKeyring;
  try {
    keyring = new CapabilityKeyring(
      keys.filter((key) => key !== undefined),
      { maxLifetimeMs },
    );
  } catch (error) {
    if (error instanceof CapabilityKeyringError) throw ConfigError.single('capabilities.keys', error.message, 'list at least one key without retiredAt, each id once');
    throw error;
  }
  return {
    keyring,
    maxLifetimeMs,
    credentials,
    devHttpHosts: section.devHttpHosts.map((host) => host.toLowerCase()),
    trustedHops: new TrustedHops(section.trustedHops),
    egress: section.egress,
  };
}
