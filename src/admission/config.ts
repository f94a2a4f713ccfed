/**
 * The admission section of the configuration file and the per-org overrides changed live. Both are
 * validated once, at load or at the admin API, so the per-request gates never meet a bad value.
 * Errors name the key (e.g. `admission.routes.guard[2]`), because an operator reads them at start.
 */
import { z } from 'zod';
import { isStorableText } from '../core/text.js';
import type { PrincipalUserType } from '../identity/principal.js';
import { issueMessage, issuePath } from '../core/issues.js';

const HOUR_MS = 60 * 60 * 1000;

/** One user type's limits: a sliding burst window and a sliding hourly cap (null: no hourly cap). */
export const typeLimitSchema = z
  .object({
    burst: z.number().int().min(1).max(1_000_000),
    burstWindowSeconds: z.number().int().min(1).max(3600),
    hourly: z.number().int().min(1).max(100_000_000).nullable(),
  })
  .strict();
export type TypeLimit = z.infer<typeof typeLimitSchema>;

export const DEFAULT_RATE_LIMITS: Record<PrincipalUserType, TypeLimit> = {
  anonymous: { burst: 10, burstWindowSeconds: 60, hourly: 120 },
  registered: { burst: 100, burstWindowSeconds: 60, hourly: 2000 },
  paid: { burst: 150, burstWindowSeconds: 60, hourly: 4000 },
  privileged: { burst: 300, burstWindowSeconds: 60, hourly: null },
};

const rateLimitsSchema = z
  .object({
    anonymous: typeLimitSchema.default(DEFAULT_RATE_LIMITS.anonymous),
    registered: typeLimitSchema.default(DEFAULT_RATE_LIMITS.registered),
    paid: typeLimitSchema.default(DEFAULT_RATE_LIMITS.paid),
    privileged: typeLimitSchema.default(DEFAULT_RATE_LIMITS.privileged),
  })
  .strict();

/** Key ids are short opaque strings; bounded so an override map cannot grow without limit. */
/** Overrides are kept as JSON in the record store, which refuses a NUL or a lone surrogate. */
const STORABLE_TEXT = 'must not contain a NUL character or a lone surrogate';
const keyOverridesSchema = z.record(z.string().min(1).max(128).refine(isStorableText, STORABLE_TEXT), typeLimitSchema).refine((m) => Object.keys(m).length <= 1000, 'at most 1000 key overrides');

export const thresholdsSchema = z
  .object({
    anonymous: z.number().gt(0).max(1),
    registered: z.number().gt(0).max(1),
    paid: z.number().gt(0).max(1),
    /** Privileged callers are admitted up to this; it is also the cap of the atomic slot/enqueue check. */
    hard: z.number().gt(0).max(1),
  })
  .strict()
  .superRefine((t, ctx) => {
    // anonymous < registered ≤ paid < hard ≤ 100 %
    if (!(t.anonymous < t.registered)) ctx.addIssue({ code: 'custom', path: ['anonymous'], message: 'must be below registered' });
    if (!(t.registered <= t.paid)) ctx.addIssue({ code: 'custom', path: ['registered'], message: 'must not exceed paid' });
    if (!(t.paid < t.hard)) ctx.addIssue({ code: 'custom', path: ['paid'], message: 'must be below hard' });
  });
export type Thresholds = z.infer<typeof thresholdsSchema>;

/**
 * A circuit breaker's settings: closed → open after N failures in a window that are also a share
 * of the recent outcomes → half-open after the recovery time → closed.
 */
export interface CircuitSettings {
  failureThreshold: number;
  /** 0–1: the share of the replica's recent outcomes that must have failed too (0: the count alone). */
  failureRatio: number;
  windowSeconds: number;
  recoverySeconds: number;
  halfOpenProbes: number;
  successesToClose: number;
}

const PROVIDER_CIRCUIT: CircuitSettings = { failureThreshold: 5, failureRatio: 0.5, windowSeconds: 30, recoverySeconds: 15, halfOpenProbes: 2, successesToClose: 2 };
/** A store comes back in seconds, and a probe costs little: recover sooner than a provider. */
const STORE_CIRCUIT: CircuitSettings = { failureThreshold: 5, failureRatio: 0.5, windowSeconds: 10, recoverySeconds: 2, halfOpenProbes: 1, successesToClose: 1 };

function circuitSettingsSchema(defaults: CircuitSettings) {
  return z
    .object({
      failureThreshold: z.number().int().min(1).max(10_000).default(defaults.failureThreshold),
      failureRatio: z.number().min(0).max(1).default(defaults.failureRatio),
      windowSeconds: z.number().int().min(1).max(3600).default(defaults.windowSeconds),
      recoverySeconds: z.number().int().min(1).max(3600).default(defaults.recoverySeconds),
      halfOpenProbes: z.number().int().min(1).max(100).default(defaults.halfOpenProbes),
      successesToClose: z.number().int().min(1).max(100).default(defaults.successesToClose),
    })
    .strict()
    .default(defaults);
}

/**
 * A quantified group that itself contains a quantifier (`(a+)+`, `(x*y)*`, `(a{1,5})+`) can take
 * exponential time to fail a match. Patterns are matched against server-defined route patterns and
 * memoised per route, so this is defence in depth: such patterns are refused outright.
 */
const NESTED_QUANTIFIER = /\((?:[^()\\]|\\.)*(?:[+*]|\{\d+,?\d*\})(?:[^()\\]|\\.)*\)(?:[+*]|\{\d+,?\d*\})/;

/** A route pattern must compile and stay short; it is matched against the route pattern, not user input. */
const routePattern = z
  .string()
  .min(1)
  .max(256)
  .refine(isStorableText, STORABLE_TEXT)
  .refine((source) => {
    try {
      new RegExp(source);
      return true;
    } catch {
      return false;
    }
  }, 'must be a valid regular expression')
  .refine((source) => !NESTED_QUANTIFIER.test(source), 'must not repeat a group that itself repeats (e.g. (a+)+)');
export const routePatterns = z.array(routePattern).max(64);

export const admissionConfigSchema = z
  .object({
    rateLimits: rateLimitsSchema.default({
      anonymous: DEFAULT_RATE_LIMITS.anonymous,
      registered: DEFAULT_RATE_LIMITS.registered,
      paid: DEFAULT_RATE_LIMITS.paid,
      privileged: DEFAULT_RATE_LIMITS.privileged,
    }),
    keyOverrides: keyOverridesSchema.default({}),
    backpressure: z
      .object({
        concurrencyPerReplica: z.number().int().min(1).max(100_000).default(256),
        /** Fraction of capacity kept in reserve (0 ≤ b < 1); thresholds apply to what is left. */
        capacityBuffer: z.number().min(0).max(0.9).default(0.05),
        thresholds: thresholdsSchema.default({ anonymous: 0.6, registered: 0.8, paid: 0.9, hard: 0.95 }),
        /** Queue whose load counts for task work. */
        taskQueue: z.string().regex(/^[a-z0-9_:-]{1,64}$/).default('tasks'),
        /**
         * An in-flight slot left unsettled (crashed replica) is freed after this. Kept short because
         * the store remembers each settled slot for this long; a request running longer stops
         * counting toward load (capacity only, never money).
         */
        slotTtlSeconds: z.number().int().min(10).max(86_400).default(120),
      })
      .strict()
      .prefault({}),
    /** Breakers of upstream dependencies (providers), shared by every replica through the hot state. */
    circuit: circuitSettingsSchema(PROVIDER_CIRCUIT),
    /** Breakers of the hot-state and record stores, held per replica (see breakers/store-breakers.ts). */
    storeCircuit: circuitSettingsSchema(STORE_CIRCUIT),
    routes: z
      .object({
        /** Extra routes guarded fully (model and task ingress always are). */
        guard: routePatterns.default([]),
        /** Routes that skip rate limit and backpressure (e.g. webhooks); never model or task ingress. */
        bypass: routePatterns.default([]),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type AdmissionConfig = z.infer<typeof admissionConfigSchema>;

/** The first problem of a failed parse as `key.path: message`, the way an operator reads it. */
export function describeIssue(error: z.ZodError, prefix: string): string {
  const issue = error.issues[0];
  return `${issuePath(prefix, issue?.path ?? [])}: ${issue === undefined ? 'invalid value' : issueMessage(issue)}`;
}

/** Parses the file section; throws an Error whose message names the offending key. */
export function parseAdmissionConfig(input: unknown, prefix = 'admission'): AdmissionConfig {
  const result = admissionConfigSchema.safeParse(input ?? {});
  if (result.success) return result.data;
  throw new Error(describeIssue(result.error, prefix));
}

/** Rate limits for some user types (an override replaces only the types it names). */
export const someTypeLimitsSchema = z
  .object({
    anonymous: typeLimitSchema.optional(),
    registered: typeLimitSchema.optional(),
    paid: typeLimitSchema.optional(),
    privileged: typeLimitSchema.optional(),
  })
  .strict();

/** What an org admin may change live: rate limits per type (partial) and per key. */
export const orgOverridesSchema = z
  .object({
    rateLimits: someTypeLimitsSchema.default({}),
    keyOverrides: keyOverridesSchema.default({}),
  })
  .strict();
export type OrgOverrides = z.infer<typeof orgOverridesSchema>;

export const HOURLY_WINDOW_MS = HOUR_MS;
