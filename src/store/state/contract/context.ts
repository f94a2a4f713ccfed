/** What an adapter hands the contract suite, and what each part of the suite works with. */
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { AppError } from '../../../core/errors.js';
import type { HotState } from '../port.js';

export interface HotStateHarness {
  state: HotState;
  /** Moves store time forward by `ms`; absent means a real sleep. */
  advance?: (ms: number) => Promise<void>;
  /** Another adapter on the same store (a second replica); absent means `state` itself. */
  peer?: () => Promise<HotState>;
  /** Closes adapters and removes everything the run wrote. */
  cleanup: () => Promise<void>;
}

export interface ContractContext {
  readonly harness: HotStateHarness;
  readonly state: HotState;
  advance(ms: number): Promise<void>;
}

/** A fresh name per case so cases never see each other's keys, even on a shared store. */
export function unique(label: string): string {
  return `${label}-${randomBytes(6).toString('hex')}`;
}

export async function expectInvalidArgument(promise: Promise<unknown>): Promise<void> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  expect((err as AppError).code).toBe('internal');
}

/** Resolves when `predicate` holds, polling briefly; fails after `timeoutMs`. */
export async function eventually(predicate: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
