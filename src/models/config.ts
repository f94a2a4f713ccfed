/**
 * The `models:` section of the configuration: upstream providers, the model catalogue (aliases,
 * fallbacks, prices in integer micro-units per million tokens), the unpriced-model switch,
 * free-model limits, retries, egress (what org custom endpoints may reach) and usage-record
 * settings. Validated at start like every other section.
 */
import { z } from 'zod';
import { secretRefSchema } from '../config/secrets.js';

const identifier = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/, 'use letters, digits and . _ : / - (at most 128)');
const micros = z.number().int().min(0).max(1_000_000_000_000);
/** Output tokens a call is reserved for when neither the request nor the model says otherwise. */
export const DEFAULT_MAX_OUTPUT_TOKENS = 4096;
/**
 * The input bound of a call whose content the provider expands (images by URL, documents): set it
 * to the model's context window. The default is a common context size, not a guarantee.
 */
export const DEFAULT_MAX_INPUT_TOKENS = 128_000;

/** A host org custom endpoints may reach over plain http, kept in the URL parser's spelling (`0x7f.1` → `127.0.0.1`). */
const plainHttpHost = z
  .string()
  .min(1)
  .max(255)
  .transform((value, ctx) => {
    let host = '';
    try {
      host = new URL(`http://${value}/`).hostname;
    } catch {
      host = '';
    }
    const bare = value.startsWith('[') && value.endsWith(']') ? 'ipv6' : value;
    if (host === '' || /[/:@?#\\\s]/.test(bare)) {
      ctx.addIssue({ code: 'custom', message: 'must be a bare host name or IP address (no scheme, port or path; IPv6 in brackets)' });
      return z.NEVER;
    }
    return host;
  });

/** How long a non-streamed call may wait for its answer unless a provider says otherwise. */
export const DEFAULT_RESPONSE_TIMEOUT_MS = 600_000;

export const providerConfigSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'use lower-case letters, digits, _ and -'),
    kind: z.enum(['openai', 'anthropic', 'openai_compatible']),
    baseUrl: z.string().url().refine((value) => /^https?:\/\//.test(value), 'must be an http(s) URL'),
    apiKey: secretRefSchema.optional(),
    /** Streamed calls: the wait for the stream to start, and any call's longest silence mid-body. */
    timeoutMs: z.number().int().min(100).max(600_000).default(60_000),
    /**
     * Non-streamed calls: the wait for the answer, which a provider sends only once it has written
     * all of it — a long completion takes minutes. Ten minutes by default, as the official SDKs wait.
     */
    responseTimeoutMs: z.number().int().min(100).max(3_600_000).default(DEFAULT_RESPONSE_TIMEOUT_MS),
  })
  .strict();

/** A model's output bound per completion, and its context window: shared by catalogue and org custom models. */
export const maxOutputTokensSchema = z.number().int().min(1).max(10_000_000);
export const maxInputTokensSchema = z.number().int().min(1).max(100_000_000);

export const priceSchema = z
  .object({
    inputPerMTok: micros,
    outputPerMTok: micros,
    cachedInputPerMTok: micros.optional(),
    /** Input written to the provider's prompt cache (Anthropic: 1.25× input); the input rate when absent. */
    cacheWriteInputPerMTok: micros.optional(),
    /** Input written to the cache for longer (Anthropic's one-hour entries: 2× input); the cache-write rate when absent. */
    cacheWriteLongInputPerMTok: micros.optional(),
    /** Audio tokens (audio models' input and output, token-billed transcription); the text rates when absent. */
    audioInputPerMTok: micros.optional(),
    audioOutputPerMTok: micros.optional(),
    /** Transcription price per second of audio, in micro-units. */
    audioPerSecond: micros.optional(),
  })
  .strict();

export const modelConfigSchema = z
  .object({
    alias: identifier,
    provider: z.string().min(1).max(64),
    upstreamModel: z.string().min(1).max(256),
    fallbacks: z.array(identifier).max(8).default([]),
    free: z.boolean().default(false),
    price: priceSchema.optional(),
    maxOutputTokens: maxOutputTokensSchema.default(DEFAULT_MAX_OUTPUT_TOKENS),
    maxInputTokens: maxInputTokensSchema.default(DEFAULT_MAX_INPUT_TOKENS),
    /** Tools the provider runs (web search, code execution, …) are billed outside token usage: off unless allowed (server-tools.ts). */
    allowServerTools: z.boolean().default(false),
  })
  .strict();

export const modelsConfigSchema = z
  .object({
    providers: z.array(providerConfigSchema).max(64).default([]),
    models: z.array(modelConfigSchema).max(2000).default([]),
    allowUnpricedModels: z.boolean().default(false),
    /** Upstream attempts per request across the fallback list (the first try included). */
    maxAttempts: z.number().int().min(1).max(8).default(3),
    freeModels: z
      .object({
        perIpHourly: z.number().int().min(1).max(1_000_000).default(60),
        anonymousPerIpDaily: z.number().int().min(1).max(1_000_000).default(200),
        retentionDays: z.number().int().min(1).max(3650).default(7),
      })
      .strict()
      .prefault({}),
    egress: z
      .object({ allowLoopback: z.boolean().default(false), allowPrivate: z.boolean().default(false), allowHttpHosts: z.array(plainHttpHost).max(64).default([]) })
      .strict()
      .prefault({}),
    usage: z
      .object({
        flushIntervalMs: z.number().int().min(10).max(60_000).default(1000),
        batchSize: z.number().int().min(1).max(5000).default(500),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((section, ctx) => {
    const providers = new Set<string>();
    section.providers.forEach((provider, index) => {
      if (providers.has(provider.id)) ctx.addIssue({ code: 'custom', path: ['providers', index, 'id'], message: `duplicate provider id "${provider.id}"` });
      providers.add(provider.id);
    });
    const aliases = new Set(section.models.map((model) => model.alias));
    const seen = new Set<string>();
    section.models.forEach((model, index) => {
      if (seen.has(model.alias)) ctx.addIssue({ code: 'custom', path: ['models', index, 'alias'], message: `duplicate model alias "${model.alias}"` });
      seen.add(model.alias);
      if (!providers.has(model.provider)) ctx.addIssue({ code: 'custom', path: ['models', index, 'provider'], message: `unknown provider "${model.provider}"` });
      model.fallbacks.forEach((fallback, f) => {
        if (!aliases.has(fallback) || fallback === model.alias) {
          ctx.addIssue({ code: 'custom', path: ['models', index, 'fallbacks', f], message: `"${fallback}" is not another model alias` });
        }
      });
    });
  });

export type ModelsConfig = z.infer<typeof modelsConfigSchema>;
export type ProviderConfig = z.infer<typeof providerConfigSchema>;
export type ModelConfig = z.infer<typeof modelConfigSchema>;
export type Price = z.infer<typeof priceSchema>;

export const DEFAULT_MODELS_CONFIG: ModelsConfig = modelsConfigSchema.parse({});
