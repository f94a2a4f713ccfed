/**
 * The end of every admitted model call: price what the provider reported, count it in the
 * metrics, add it to the usage rollups, and settle the admission ticket — once. A call whose usage
 * is unknown (stream without usage, client gone, timeout) is billed at its reserved maximum and
 * flagged, never at zero.
 */
import type { AdmissionTicket, CostEstimate, SettleOutcome } from '../admission/types.js';
import type { Clock } from '../core/clock.js';
import type { Principal } from '../identity/principal.js';
import type { CatalogueModel } from './catalogue.js';
import type { ModelMetrics } from './metrics.js';
import { costMicros, totalTokens, ZERO_USAGE, type Usage } from './pricing.js';
import type { UsageSink } from './usage-records.js';

export interface MeteringDeps {
  metrics: ModelMetrics;
  usage: UsageSink;
  clock: Clock;
}

export interface MeteredCall {
  principal: Principal;
  model: CatalogueModel;
  estimate: CostEstimate;
  ticket: AdmissionTicket;
}

/** Settles the ticket (success with usage, or the given outcome) and records the call's usage. */
export function meter(deps: MeteringDeps, call: MeteredCall, usage: Usage | null, outcome: SettleOutcome | null): Promise<void> {
  const { model, principal } = call;
  const metered = usage ?? ZERO_USAGE;
  const actualMicros = costMicros(metered, model.price);
  const settle: SettleOutcome = outcome ?? { kind: 'success', actualMicros, actualTokens: totalTokens(metered) };
  const unmetered = settle.kind === 'unmetered';
  const billed = unmetered ? call.estimate.maxMicros : actualMicros;
  deps.metrics.settled(model.alias, settle.kind, metered, billed);
  deps.usage.record({
    at: deps.clock.now(),
    orgId: principal.orgId,
    userId: principal.userId,
    keyId: principal.keyId ?? null,
    model: model.alias,
    provider: model.provider.id,
    inputTokens: metered.inputTokens,
    outputTokens: metered.outputTokens,
    cachedInputTokens: metered.cachedInputTokens,
    costMicros: billed,
    free: model.free,
    unmetered,
  });
  return call.ticket.settle(settle);
}
