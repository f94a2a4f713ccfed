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
  /** Transcriptions bill by duration. */
  audioSeconds: number;
}

export const ZERO_USAGE: Usage = { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, audioSeconds: 0 };

const PER_MILLION = 1_000_000;

/** The rates of input tokens: plain, read from the cache, written to it, written for longer. */
function inputRates(price: Price): { plain: number; cached: number; write: number; writeLong: number } {
  const write = price.cacheWriteInputPerMTok ?? price.inputPerMTok;
  return { plain: price.inputPerMTok, cached: price.cachedInputPerMTok ?? price.inputPerMTok, write, writeLong: price.cacheWriteLongInputPerMTok ?? write };
}

export function costMicros(usage: Usage, price: Price | null): number {
  if (price === null) return 0;
  const rates = inputRates(price);
  // Each part is taken from what is left of the input, so a provider reporting more parts than
  // input tokens cannot bill a token twice.
  let left = usage.inputTokens;
  const take = (count: number | undefined): number => {
    const taken = Math.min(count ?? 0, left);
    left -= taken;
    return taken;
  };
  const cached = take(usage.cachedInputTokens);
  const written = take(usage.cacheWriteInputTokens);
  const writtenLong = take(usage.cacheWriteLongInputTokens);
  const numerator = left * rates.plain + cached * rates.cached + written * rates.write + writtenLong * rates.writeLong + usage.outputTokens * price.outputPerMTok;
  const audio = Math.ceil(usage.audioSeconds) * (price.audioPerSecond ?? 0);
  return Math.ceil(numerator / PER_MILLION) + audio;
}

/**
 * The most a call within these bounds may cost: every input token at the dearest input rate (a
 * caller decides what is cached or written to the cache), every output token at the output rate.
 */
export function maxCostMicros(bound: Usage, price: Price | null): number {
  if (price === null) return 0;
  const rates = inputRates(price);
  const dearest = Math.max(rates.plain, rates.cached, rates.write, rates.writeLong);
  return costMicros({ ...bound, cachedInputTokens: 0, cacheWriteInputTokens: 0, cacheWriteLongInputTokens: 0 }, { ...price, inputPerMTok: dearest });
}

export function totalTokens(usage: Usage): number {
  return usage.inputTokens + usage.outputTokens;
}

/** Non-negative safe integer or 0: provider numbers are untrusted input. */
export function tokenCount(value: unknown): number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : 0;
}
