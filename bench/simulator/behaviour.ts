/**
 * How the simulator behaves: server-wide defaults, changed live through the control endpoint or
 * `configure()`, and narrowed per request with `x-sim-*` headers. Everything is bounded so a test or
 * a benchmark cannot ask the simulator to allocate without limit.
 */
import { z } from 'zod';

export type UsageMode = 'auto' | 'always' | 'never';
export type FailureMode = 500 | 429 | 'hang';

export interface Behaviour {
  /** Delay before the response headers (time to first byte), in ms. */
  latencyMs: number;
  /** Completion length in tokens (capped by the request's own max tokens). */
  responseTokens: number;
  /** Number of content chunks a stream carries (at most one per token). */
  streamChunks: number;
  /** Delay between stream chunks, in ms; 0 sends the whole stream in one write. */
  chunkDelayMs: number;
  /**
   * Usage reporting: `auto` follows the protocol (always on JSON, on OpenAI streams only when the
   * request sets `stream_options.include_usage`); `always` adds it to every stream; `never` drops it.
   */
  usage: UsageMode;
  /** End a stream abruptly after this many content chunks (no final chunk, no usage); null = never. */
  abortAfterChunks: number | null;
  /** Embedding vector length when the request does not name `dimensions`. */
  embeddingDimensions: number;
}

export interface FailurePlan {
  mode: FailureMode;
  /** Fail the next `count` requests, then stop. */
  count?: number;
  /** Fail this share of requests, spread evenly (deterministic, not random). */
  ratio?: number;
}

export const DEFAULT_BEHAVIOUR: Readonly<Behaviour> = Object.freeze({
  latencyMs: 0,
  responseTokens: 16,
  streamChunks: 8,
  chunkDelayMs: 0,
  usage: 'auto',
  abortAfterChunks: null,
  embeddingDimensions: 16,
});

const MAX_DELAY_MS = 60_000;
const MAX_TOKENS = 100_000;
const MAX_CHUNKS = 10_000;
const MAX_DIMENSIONS = 4_096;

export const behaviourPatchSchema = z
  .object({
    latencyMs: z.number().int().min(0).max(MAX_DELAY_MS),
    responseTokens: z.number().int().min(1).max(MAX_TOKENS),
    streamChunks: z.number().int().min(1).max(MAX_CHUNKS),
    chunkDelayMs: z.number().int().min(0).max(MAX_DELAY_MS),
    usage: z.enum(['auto', 'always', 'never']),
    abortAfterChunks: z.number().int().min(0).max(MAX_CHUNKS).nullable(),
    embeddingDimensions: z.number().int().min(1).max(MAX_DIMENSIONS),
  })
  .partial()
  .strict();

export const failurePlanSchema = z
  .object({
    mode: z.union([z.literal(500), z.literal(429), z.literal('hang')]),
    count: z.number().int().min(1).max(1_000_000).optional(),
    ratio: z.number().min(0).max(1).optional(),
  })
  .strict()
  .refine((plan) => (plan.count === undefined) !== (plan.ratio === undefined), {
    message: 'give exactly one of count or ratio',
  });

export type BehaviourPatch = z.infer<typeof behaviourPatchSchema>;

/** Body of `POST /_sim/config`: behaviour fields, plus `failure` (a plan, or null to clear it). */
export const controlConfigSchema = behaviourPatchSchema.extend({
  failure: failurePlanSchema.nullable().optional(),
});

function headerInt(value: string | string[] | undefined, min: number, max: number): number | undefined {
  if (typeof value !== 'string' || !/^\d{1,9}$/.test(value)) return undefined;
  const parsed = Number(value);
  return parsed >= min && parsed <= max ? parsed : undefined;
}

type Headers = Record<string, string | string[] | undefined>;

/**
 * Applies `x-sim-*` request headers over the server behaviour. Malformed values are ignored rather
 * than refused: the simulator stands in for a provider, which would not reject them either.
 */
export function behaviourForRequest(base: Behaviour, headers: Headers): Behaviour {
  // Fast path for the benchmark: most requests carry no override at all.
  if (headers['x-sim-latency-ms'] === undefined && headers['x-sim-tokens'] === undefined &&
      headers['x-sim-chunks'] === undefined && headers['x-sim-chunk-delay-ms'] === undefined &&
      headers['x-sim-usage'] === undefined && headers['x-sim-abort-after-chunks'] === undefined) {
    return base;
  }
  const usage = headers['x-sim-usage'];
  return {
    latencyMs: headerInt(headers['x-sim-latency-ms'], 0, MAX_DELAY_MS) ?? base.latencyMs,
    responseTokens: headerInt(headers['x-sim-tokens'], 1, MAX_TOKENS) ?? base.responseTokens,
    streamChunks: headerInt(headers['x-sim-chunks'], 1, MAX_CHUNKS) ?? base.streamChunks,
    chunkDelayMs: headerInt(headers['x-sim-chunk-delay-ms'], 0, MAX_DELAY_MS) ?? base.chunkDelayMs,
    usage: usage === 'auto' || usage === 'always' || usage === 'never' ? usage : base.usage,
    abortAfterChunks: headerInt(headers['x-sim-abort-after-chunks'], 0, MAX_CHUNKS) ?? base.abortAfterChunks,
    embeddingDimensions: base.embeddingDimensions,
  };
}

/** A per-request `x-sim-fail: 500 | 429 | hang` header forces that failure for this one request. */
export function failureFromHeader(headers: Headers): FailureMode | undefined {
  const value = headers['x-sim-fail'];
  if (value === '500') return 500;
  if (value === '429') return 429;
  if (value === 'hang') return 'hang';
  return undefined;
}

/**
 * Decides, request by request, whether the active plan fails it. A ratio is applied by a counter
 * (fail whenever floor(n·ratio) steps up) so a test asking for 25 % sees exactly one in four.
 */
export class FailureInjector {
  #plan: FailurePlan | null = null;
  #seen = 0;
  #failed = 0;

  set(plan: FailurePlan | null): void {
    this.#plan = plan;
    this.#seen = 0;
    this.#failed = 0;
  }

  get plan(): FailurePlan | null {
    return this.#plan;
  }

  next(): FailureMode | undefined {
    const plan = this.#plan;
    if (plan === null) return undefined;
    if (plan.count !== undefined) {
      if (this.#failed >= plan.count) return undefined;
      this.#failed += 1;
      return plan.mode;
    }
    const ratio = plan.ratio ?? 0;
    const before = Math.floor(this.#seen * ratio);
    this.#seen += 1;
    const after = Math.floor(this.#seen * ratio);
    return after > before ? plan.mode : undefined;
  }
}
