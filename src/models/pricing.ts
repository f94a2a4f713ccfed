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
  /** Transcriptions bill by duration. */
  audioSeconds: number;
}

export const ZERO_USAGE: Usage = { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, audioSeconds: 0 };

const PER_MILLION = 1_000_000;

export function costMicros(usage: Usage, price: Price | null): number {
  if (price === null) return 0;
  const cached = Math.min(usage.cachedInputTokens, usage.inputTokens);
  const cachedPrice = price.cachedInputPerMTok ?? price.inputPerMTok;
  const numerator = (usage.inputTokens - cached) * price.inputPerMTok + cached * cachedPrice + usage.outputTokens * price.outputPerMTok;
  const audio = Math.ceil(usage.audioSeconds) * (price.audioPerSecond ?? 0);
  return Math.ceil(numerator / PER_MILLION) + audio;
}

export function totalTokens(usage: Usage): number {
  return usage.inputTokens + usage.outputTokens;
}

/** Non-negative safe integer or 0: provider numbers are untrusted input. */
export function tokenCount(value: unknown): number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : 0;
}
