/**
 * The most a model call may cost, reserved before anything is sent upstream: every request byte as
 * an input token (or the model's context window, for content the provider expands), every
 * completion the call asks for at the largest output bound it set, an upload's duration at a bitrate
 * below any codec's, each token at the dearest rate of its side, at the dearest model of the chain.
 * The settlement never charges a budget above this, so anything it misses is spend no budget sees.
 */
import type { CostEstimate } from '../admission/types.js';
import { AppError } from '../core/errors.js';
import type { CatalogueModel } from './catalogue.js';
import { maxCostMicros, totalTokens, ZERO_USAGE, type Usage } from './pricing.js';
import type { Operation } from './providers/index.js';
import { carriesUnboundedInput } from './unbounded-input.js';

/** What of a call the estimate reads (gateway.ts's ModelCall). */
export interface EstimatedCall {
  operation: Operation;
  model: string;
  body: Record<string, unknown>;
  inputBytes: number;
}

/** Fields a caller may bound one completion's output with, across the OpenAI and Anthropic APIs. */
const MAX_OUTPUT_FIELDS = ['max_tokens', 'max_completion_tokens', 'max_output_tokens'] as const;
/**
 * The lowest bitrate an upload's duration is bounded by: 4 kbit/s, below Opus' 6 kbit/s floor (the
 * leanest codec the transcription formats carry, in ogg or webm). At 1 kB/s a long voice memo in
 * Opus would have run longer than its reservation.
 */
export const MIN_AUDIO_BYTES_PER_SECOND = 500;
/** Most completions one call may ask for (`n`, `best_of`): the OpenAI API's own ceiling. */
export const MAX_CHOICES = 128;

/**
 * The output bound of one completion the caller set, or null. When several fields are set the
 * largest counts: which one a provider honours is the provider's business, and an estimate from
 * the smallest would reserve less than the call may spend.
 */
function requestedMaxOutput(body: Record<string, unknown>): number | null {
  let largest: number | null = null;
  for (const field of MAX_OUTPUT_FIELDS) {
    const value = body[field];
    if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) largest = Math.max(largest ?? 0, value);
  }
  return largest;
}

function choiceCount(body: Record<string, unknown>, field: 'n' | 'best_of'): number {
  const value = body[field];
  if (value === undefined || value === null) return 1;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > MAX_CHOICES) {
    throw new AppError('validation_failed', { message: `Invalid body.${field}: use a whole number from 1 to ${MAX_CHOICES}.`, details: { field: `body.${field}` } });
  }
  return value;
}

/**
 * How many completions the provider generates for this call: `n` on chat and completions, and on
 * completions `best_of`, which the provider generates (and bills) in full to return the best `n`.
 * Each may be as long as the output bound, so the estimate multiplies it.
 */
function requestedChoices(operation: Operation, body: Record<string, unknown>): number {
  if (operation === 'chat') return choiceCount(body, 'n');
  if (operation === 'completions') return Math.max(choiceCount(body, 'n'), choiceCount(body, 'best_of'));
  return 1;
}

export function estimateCall(call: EstimatedCall, chain: readonly CatalogueModel[]): CostEstimate {
  const maxOutput = requestedMaxOutput(call.body);
  const choices = requestedChoices(call.operation, call.body);
  const unboundedInput = carriesUnboundedInput(call.operation, call.body);
  let maxMicros = 0;
  let maxTokens = 0;
  let unpriced = false;
  for (const candidate of chain) {
    unpriced ||= candidate.price === null;
    const output = call.operation === 'embeddings' || call.operation === 'transcriptions' ? 0 : choices * (maxOutput ?? candidate.maxOutputTokens);
    // Every request byte may be a token; content the provider expands may fill the context window.
    const input = unboundedInput ? Math.max(call.inputBytes, candidate.maxInputTokens) : call.inputBytes;
    const usage: Usage = { ...ZERO_USAGE, inputTokens: input, outputTokens: output, audioSeconds: call.operation === 'transcriptions' ? Math.ceil(call.inputBytes / MIN_AUDIO_BYTES_PER_SECOND) : 0 };
    maxMicros = Math.max(maxMicros, maxCostMicros(usage, candidate.price));
    maxTokens = Math.max(maxTokens, totalTokens(usage));
  }
  // Whether an unpriced model may run is decided in one place: the economics gate (`models.allowUnpricedModels`).
  return { model: call.model, maxMicros, maxTokens, ...(unpriced ? { unpriced: true } : {}) };
}
