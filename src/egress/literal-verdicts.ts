/**
 * Verdicts on IP-literal hosts. A connection to a name is checked by the agent's lookup
 * (`guardedLookup`) when it opens, but an IP literal never reaches a lookup, so whoever connects to
 * one checks it first — once per address: an address's class never changes, and neither does the
 * policy it is checked against. Shared by the model gateway's HTTP client and the egress proxy.
 */
import { EgressRefusedError, resolveForConnect, type ResolveOptions } from './resolve.js';

/** Bounds the cache whatever the configured destinations are. */
const MAX_VERDICTS = 1024;

export class LiteralVerdicts {
  readonly #verdicts = new Map<string, EgressRefusedError | null>();

  constructor(private readonly options: ResolveOptions) {}

  /** The refusal of an IP-literal host, or null when it may be connected to; synchronous once known. */
  verdict(literalHost: string): EgressRefusedError | null | Promise<EgressRefusedError | null> {
    const known = this.#verdicts.get(literalHost);
    if (known !== undefined) return known;
    return resolveForConnect(literalHost, this.options).then((target) => {
      const verdict = target.ok ? null : new EgressRefusedError(target.reason, target.addressClass);
      if (this.#verdicts.size >= MAX_VERDICTS) this.#verdicts.clear();
      this.#verdicts.set(literalHost, verdict);
      return verdict;
    });
  }
}
