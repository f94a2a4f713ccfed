/**
 * Platform-wide admission settings a platform admin changes live (`PUT /api/admission`): default
 * rate limits per user type, backpressure capacity and thresholds, the provider and store circuit
 * settings, and the route guard/bypass patterns. The file's `admission` section gives the defaults;
 * an override replaces what it names, field by field, and the result is validated as a whole, the
 * same way the file is at load (so thresholds must satisfy anonymous < registered ≤ paid < hard ≤ 1
 * after every change, and every route pattern must compile, stay short and never nest quantifiers).
 */
import { z } from 'zod';
import { admissionConfigSchema, describeIssue, routePatterns, someTypeLimitsSchema, type AdmissionConfig } from './config.js';

const fraction = z.number().gt(0).max(1);
const circuitOverride = z
  .object({
    failureThreshold: z.number().int().min(1).max(10_000).optional(),
    failureRatio: z.number().min(0).max(1).optional(),
    windowSeconds: z.number().int().min(1).max(3600).optional(),
    recoverySeconds: z.number().int().min(1).max(3600).optional(),
    halfOpenProbes: z.number().int().min(1).max(100).optional(),
    successesToClose: z.number().int().min(1).max(100).optional(),
  })
  .strict();

export const platformOverridesSchema = z
  .object({
    rateLimits: someTypeLimitsSchema.optional(),
    backpressure: z
      .object({
        concurrencyPerReplica: z.number().int().min(1).max(100_000).optional(),
        capacityBuffer: z.number().min(0).max(0.9).optional(),
        thresholds: z.object({ anonymous: fraction.optional(), registered: fraction.optional(), paid: fraction.optional(), hard: fraction.optional() }).strict().optional(),
      })
      .strict()
      .optional(),
    circuit: circuitOverride.optional(),
    storeCircuit: circuitOverride.optional(),
    routes: z.object({ guard: routePatterns.optional(), bypass: routePatterns.optional() }).strict().optional(),
  })
  .strict();
export type PlatformOverrides = z.infer<typeof platformOverridesSchema>;

/** Drops the keys whose value is undefined, so a spread never overwrites a default with nothing. */
function defined<T extends object>(value: T | undefined): Partial<T> {
  if (value === undefined) return {};
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * The file's config with the overrides applied, validated as a whole. Returns the problem
 * (`admission.backpressure.thresholds.paid: must be below hard`) instead of throwing.
 */
export function applyPlatformOverrides(base: AdmissionConfig, overrides: PlatformOverrides): { ok: true; config: AdmissionConfig } | { ok: false; problem: string } {
  const merged = {
    ...base,
    rateLimits: { ...base.rateLimits, ...defined(overrides.rateLimits) },
    backpressure: {
      ...base.backpressure,
      ...defined({ concurrencyPerReplica: overrides.backpressure?.concurrencyPerReplica, capacityBuffer: overrides.backpressure?.capacityBuffer }),
      thresholds: { ...base.backpressure.thresholds, ...defined(overrides.backpressure?.thresholds) },
    },
    circuit: { ...base.circuit, ...defined(overrides.circuit) },
    storeCircuit: { ...base.storeCircuit, ...defined(overrides.storeCircuit) },
    routes: { ...base.routes, ...defined(overrides.routes) },
  };
  const result = admissionConfigSchema.safeParse(merged);
  return result.success ? { ok: true, config: result.data } : { ok: false, problem: describeIssue(result.error, 'admission') };
}
