/**
 * Cost in integer micro-units. Prices are micro-units per million tokens, so a token count times a
 * price is an exact integer numerator; one division at the end, rounded up, so a call is never
 * billed below its true cost. Every intermediate stays far below 2^53 for any bounded input.
 */
import type { Price } from './config.js';

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  /** The part of inputTokens served from the provider's prompt cache. */
  cachedInputTokens: number;
  /**
   * The part of inputTokens written to the provider's prompt cache, which some providers bill above
   * the input rate (Anthropic); `Long` for entries kept longer (Anthropic's one-hour entries).
   */
  cacheWriteInputTokens?: number;
  cacheWriteLongInputTokens?: number;
  /** The parts of inputTokens and outputTokens that are audio, which audio models bill above text. */
  audioInputTokens?: number;
  audioOutputTokens?: number;
  /** Transcriptions bill by duration. */
  audioSeconds: number;
}

export const ZERO_USAGE: Usage = { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, audioSeconds: 0 };

const PER_MILLION = 1_000_000;

/** One division, rounded up, at the end; audio per started second. */
function micros(numerator: number, audioSeconds: number, price: Price): number {
  return Math.ceil(numerator / PER_MILLION) + Math.ceil(audioSeconds) * (price.audioPerSecond ?? 0);
}

// Both functions run for every model call (the estimate for each model of its chain, the
// settlement once): plain arithmetic, no object or closure per call.

export function costMicros(usage: Usage, price: Price | null): number {
  if (price === null) return 0;
  const writeRate = price.cacheWriteInputPerMTok ?? price.inputPerMTok;
  // Each part is taken from what is left of the input, so a provider reporting more parts than
  // input tokens cannot bill a token twice.
  let left = usage.inputTokens;
  const cached = Math.min(usage.cachedInputTokens, left);
  left -= cached;
  const written = Math.min(usage.cacheWriteInputTokens ?? 0, left);
  left -= written;
  const writtenLong = Math.min(usage.cacheWriteLongInputTokens ?? 0, left);
  left -= writtenLong;
  const audioIn = Math.min(usage.audioInputTokens ?? 0, left);
  left -= audioIn;
  const audioOut = Math.min(usage.audioOutputTokens ?? 0, usage.outputTokens);
  const numerator =
    left * price.inputPerMTok +
    cached * (price.cachedInputPerMTok ?? price.inputPerMTok) +
    written * writeRate +
    writtenLong * (price.cacheWriteLongInputPerMTok ?? writeRate) +
    audioIn * (price.audioInputPerMTok ?? price.inputPerMTok) +
    (usage.outputTokens - audioOut) * price.outputPerMTok +
    audioOut * (price.audioOutputPerMTok ?? price.outputPerMTok);
  return micros(numerator, usage.audioSeconds, price);
}

/**
 * The most a call within these bounds may cost: every token at the dearest rate of its side (a
 * caller decides what is cached, written to the cache, or audio).
 */
export function maxCostMicros(bound: Usage, price: Price | null): number {
  if (price === null) return 0;
  const writeRate = price.cacheWriteInputPerMTok ?? price.inputPerMTok;
  const dearestInput = Math.max(price.inputPerMTok, price.cachedInputPerMTok ?? 0, writeRate, price.cacheWriteLongInputPerMTok ?? writeRate, price.audioInputPerMTok ?? 0);
  const dearestOutput = Math.max(price.outputPerMTok, price.audioOutputPerMTok ?? 0);
  return micros(bound.inputTokens * dearestInput + bound.outputTokens * dearestOutput, bound.audioSeconds, price);
}

export function totalTokens(usage: Usage): number {
  return usage.inputTokens + usage.outputTokens;
}

/** Non-negative safe integer or 0: provider numbers are untrusted input. */
export function tokenCount(value: unknown): number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : 0;
}
