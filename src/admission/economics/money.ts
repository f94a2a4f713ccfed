/**
 * Money and token arithmetic for budgets. Every amount is an integer: money in micro-units
 * (1.00 = 1,000,000), tokens and requests as counts. Floats never enter: a rounding error in a
 * budget is either money lost or a cap that leaks, so every value is checked with
 * Number.isSafeInteger and the one multiplication that could overflow is done in BigInt.
 */
import { AppError } from '../../core/errors.js';

export const MICROS_PER_UNIT = 1_000_000;
const TOKENS_PER_PRICE_UNIT = 1_000_000n;

/** A model's price: micro-units of money per million tokens, input and output separately. */
export interface ModelPrice {
  inputMicrosPerMillion: number;
  outputMicrosPerMillion: number;
}

/** True when `value` is a non-negative safe integer (the only shape an amount may take). */
export function isAmount(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

/** Throws AppError `internal` (a caller bug, never a client mistake) unless `value` is an amount. */
export function assertAmount(value: number, what: string): number {
  if (!isAmount(value)) throw new AppError('internal', { cause: new RangeError(`economics: ${what} must be a non-negative safe integer`) });
  return value;
}

/** Parses a decimal money string such as "1.50" into micro-units exactly (no float on the way). */
export function parseMoney(text: string): number {
  const match = /^(\d{1,9})(?:\.(\d{1,6}))?$/.exec(text);
  if (match === null) throw new AppError('validation_failed', { message: 'A money amount must look like 12.345678 (at most 6 decimals).' });
  const whole = Number(match[1]);
  const fraction = Number((match[2] ?? '').padEnd(6, '0'));
  return whole * MICROS_PER_UNIT + fraction;
}

/** Formats micro-units as a decimal string with 6 places ("1.000000"); for display only. */
export function formatMoney(micros: number): string {
  assertAmount(micros, 'micros');
  const whole = Math.floor(micros / MICROS_PER_UNIT);
  const fraction = micros % MICROS_PER_UNIT;
  return `${whole}.${String(fraction).padStart(6, '0')}`;
}

/** ceil(tokens × microsPerMillion / 1e6) in exact integer maths: a partial micro-unit is charged whole. */
export function tokenCost(tokens: number, microsPerMillion: number): number {
  assertAmount(tokens, 'tokens');
  assertAmount(microsPerMillion, 'price');
  const product = BigInt(tokens) * BigInt(microsPerMillion);
  const cost = (product + TOKENS_PER_PRICE_UNIT - 1n) / TOKENS_PER_PRICE_UNIT;
  if (cost > BigInt(Number.MAX_SAFE_INTEGER)) throw new AppError('internal', { cause: new RangeError('economics: cost exceeds the safe integer range') });
  return Number(cost);
}

/** The cost of a call with these token counts (each part rounded up on its own). */
export function actualCost(price: ModelPrice, inputTokens: number, outputTokens: number): number {
  return safeSum(tokenCost(inputTokens, price.inputMicrosPerMillion), tokenCost(outputTokens, price.outputMicrosPerMillion));
}

/**
 * The most a call may cost before it runs: every token of `maxTokens` priced at the dearer of the
 * two rates, because input and output shares are not known yet and the bound must hold either way.
 * With `inputTokens` known (the prompt was counted), input is priced at its own rate and the rest
 * at the output rate.
 */
export function estimateCost(price: ModelPrice, maxTokens: number, inputTokens?: number): number {
  assertAmount(maxTokens, 'maxTokens');
  if (inputTokens === undefined) {
    return tokenCost(maxTokens, Math.max(price.inputMicrosPerMillion, price.outputMicrosPerMillion));
  }
  assertAmount(inputTokens, 'inputTokens');
  const input = Math.min(inputTokens, maxTokens);
  return actualCost(price, input, maxTokens - input);
}

/** a + b, refusing to leave the safe integer range. */
export function safeSum(a: number, b: number): number {
  const sum = assertAmount(a, 'amount') + assertAmount(b, 'amount');
  return assertAmount(sum, 'sum');
}

/** Whether used ≥ percent % of cap, in exact integer maths (used × 100 may exceed 2^53). */
export function reachedPercent(used: number, cap: number, percent: number): boolean {
  return BigInt(used) * 100n >= BigInt(percent) * BigInt(cap);
}
