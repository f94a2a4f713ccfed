/**
 * Puts a LocalBreaker in front of an object whose methods are calls to a store: every method call
 * asks the breaker first, fails fast with `refuse(retryAfterSeconds)` while it is open, and reports
 * its outcome (a rejection `isFailure` accepts counts as a failure; anything else — an answer, or an
 * error that is the caller's own bug — as a success). Methods listed in `passThrough` (e.g. close)
 * are never refused. The wrappers are built once per method, not per call.
 */
import type { LocalBreaker } from './local-breaker.js';

export interface GuardOptions {
  isFailure(error: unknown): boolean;
  refuse(retryAfterSeconds: number): Error;
  passThrough?: readonly string[];
}

export function guardCalls<T extends object>(target: T, breaker: LocalBreaker, options: GuardOptions): T {
  const passThrough = new Set(options.passThrough ?? []);
  const wrappers = new Map<PropertyKey, unknown>();
  const wrap = (method: (...args: unknown[]) => unknown) =>
    async (...args: unknown[]): Promise<unknown> => {
      const decision = breaker.allow();
      if (!decision.ok) throw options.refuse(Math.max(1, Math.ceil(decision.retryAfterMs / 1000)));
      try {
        const result = await method.apply(target, args);
        breaker.report(decision.pass, true);
        return result;
      } catch (error) {
        breaker.report(decision.pass, !options.isFailure(error));
        throw error;
      }
    };
  return new Proxy(target, {
    get(object, property, receiver) {
      const value: unknown = Reflect.get(object, property, receiver);
      if (typeof value !== 'function' || (typeof property === 'string' && passThrough.has(property))) return value;
      let wrapper = wrappers.get(property);
      if (wrapper === undefined) {
        wrapper = wrap(value as (...args: unknown[]) => unknown);
        wrappers.set(property, wrapper);
      }
      return wrapper;
    },
  });
}
