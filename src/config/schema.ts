/**
 * The configuration file's shape, with defaults. Everything is validated at start; see load.ts for
 * how file, environment and defaults combine, and README's configuration reference for each key.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { secretRefSchema } from './secrets.js';
import { DEFAULT_MODELS_CONFIG, modelsConfigSchema } from '../models/config.js';
import { capabilitiesConfigSchema } from '../capabilities/http/config.js';

const cidr = z.string().refine((value) => {
  const [address, bits, extra] = value.split('/');
  if (address === undefined || extra !== undefined || isIP(address) === 0) return false;
  if (bits === undefined) return true;
  const max = isIP(address) === 4 ? 32 : 128;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= max;
}, 'must be an IP address or CIDR such as 10.0.0.0/8');

// An absent section is parsed as `{}` (`prefault`), so every default is written once, on its field.
export const configSchema = z
  .object({
    server: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(7070),
        trustedProxies: z.array(cidr).default([]),
        behindTls: z.boolean().default(false),
        bodyLimitBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
        shutdownGraceMs: z.number().int().min(0).max(120_000).default(10_000),
        // Longest a client may take to send one whole request, body included: a sender trickling
        // bytes holds its connection no longer (Node's own default; the framework's is no limit).
        requestTimeoutMs: z.number().int().min(1_000).max(3_600_000).default(300_000),
        // Gateway processes on this machine, each a replica of the distributed deployment ('auto': one per CPU).
        workers: z.union([z.number().int().min(1).max(64), z.literal('auto')]).default(1),
      })
      .strict()
      .prefault({}),
    dataDir: z.string().min(1).default('./data'),
    database: z
      .object({ url: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional() })
      .strict()
      .default({}),
    redis: z
      .object({
        url: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').optional(),
        prefix: z.string().regex(/^[a-z0-9_-]{1,32}$/).default('pc'),
      })
      .strict()
      .prefault({}),
    secrets: z
      .object({
        keySigning: secretRefSchema,
        master: secretRefSchema,
        audit: secretRefSchema,
      })
      .strict(),
    keys: z
      .object({
        defaultTtlDays: z.number().int().min(1).max(3650).default(30),
        maxTtlDays: z.number().int().min(1).max(3650).default(90),
      })
      .strict()
      .prefault({}),
    sessions: z
      .object({ ttlHours: z.number().min(0.1).max(24 * 30).default(12) })
      .strict()
      .prefault({}),
    login: z
      .object({
        maxFailures: z.number().int().min(1).max(1000).default(10),
        windowSeconds: z.number().int().min(1).max(86_400).default(60),
        lockSeconds: z.number().int().min(1).max(86_400).default(300),
      })
      .strict()
      .prefault({}),
    oidc: z
      // Each issuer is validated by identity/oidc at start (its errors name oidc.issuers[i].field).
      .object({ issuers: z.array(z.unknown()).max(32).default([]) })
      .strict()
      .prefault({}),
    runtime: z
      .object({ mintTimeoutMs: z.number().int().min(100).max(60_000).default(5000) })
      .strict()
      .prefault({}),
    audit: z
      .object({
        checkpointEvery: z.number().int().min(1).max(100_000).default(100),
        // The longest a written record goes without a signed checkpoint.
        checkpointIntervalMs: z.number().int().min(1000).max(3_600_000).default(60_000),
      })
      .strict()
      .prefault({}),
    budgets: z
      .object({
        // Validated by admission/economics at start (its errors name budgets.defaults.<kind>[i].field).
        defaults: z.unknown().optional(),
        // allowUnpricedModels moved to models.allowUnpricedModels (see deprecated.ts).
        reservationTtlSeconds: z.number().int().min(10).max(86_400).default(600),
        reconcileIntervalSeconds: z.number().int().min(1).max(3600).default(30),
        refreshSeconds: z.number().int().min(1).max(3600).default(60),
      })
      .strict()
      .prefault({}),
    // Agent tasks: worker leases and health, the requeue job and the outbox relay (see README, Agent tasks).
    tasks: z
      .object({
        leaseSeconds: z.number().int().min(2).max(3600).default(30),
        workerHealthySeconds: z.number().int().min(1).max(600).default(15),
        requeueIntervalMs: z.number().int().min(50).max(60_000).default(1000),
        relayIntervalMs: z.number().int().min(50).max(60_000).default(500),
        recordTtlHours: z.number().int().min(1).max(24 * 365).default(168),
        hardLimitPercent: z.number().int().min(1).max(100).default(95),
      })
      .strict()
      .prefault({}),
    // The sandbox credential broker; absent means off (see README, capabilities).
    capabilities: capabilitiesConfigSchema.optional(),
    // Validated by admission/ at start (errors name admission.<key>); see README "Admission control".
    admission: z.unknown().optional(),
    // Model gateway: providers, model catalogue with prices and fallbacks, free-model limits (see README, Model gateway).
    models: modelsConfigSchema.default(DEFAULT_MODELS_CONFIG),
    logging: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((config, ctx) => {
    // Embedded records (one PGlite folder) and in-memory hot state belong to one process.
    if (config.server.workers !== 1 && (config.database.url === undefined || config.redis.url === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['server', 'workers'], message: 'more than one worker process needs the distributed deployment: set database.url and redis.url, or server.workers: 1' });
    }
    if (config.keys.defaultTtlDays > config.keys.maxTtlDays) {
      ctx.addIssue({ code: 'custom', path: ['keys', 'defaultTtlDays'], message: `must not exceed keys.maxTtlDays (${config.keys.maxTtlDays})` });
    }
  });

export type PortcullisConfig = z.infer<typeof configSchema>;
