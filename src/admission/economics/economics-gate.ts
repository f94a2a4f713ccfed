/**
 * The economics gate: before a call, reserve its most possible cost on every budget line it
 * touches; after it, commit the actual and release the rest (or release all when the upstream did
 * no billable work). Refusals are values; a hot state that cannot be reached refuses with 503
 * `dependency_unavailable` before any provider call (budgets fail closed).
 *
 * Lines are grouped by metric, because one reservation moves one amount on all its lines: money in
 * micro-units, tokens, and requests (always 1). Each group is one atomic `reserve` over all the
 * lines of that metric (org, user and key; every period), all in the org's scope so it is one
 * Redis slot. Groups run in parallel; if any refuses, the others are released. A group that was
 * briefly reserved and then released can at worst make a concurrent request see less headroom for
 * a moment — it can never let more than the cap through.
 */
import type { AuditSink } from '../../audit/sink.js';
import type { Clock } from '../../core/clock.js';
import { AppError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { isHotStateUnavailable } from '../../store/state/errors.js';
import type { HotState } from '../../store/state/port.js';
import type { AdmissionRequest, CostEstimate, EconomicsGate, EconomicsReservation, Refusal, SettleOutcome } from '../types.js';
import { BudgetAlerts } from './alerts.js';
import { budgetScope, resolveLines, subjectsOf, type BudgetRule, type DefaultBudgets, type Metric, type ResolvedLine, type SubjectKind } from './definitions.js';
import { EconomicsMetrics } from './metrics.js';
import { assertAmount, estimateCost, type ModelPrice } from './money.js';
import { ScopeTracker } from './reconciler.js';

/** The hot state allows at most this many lines per reservation. */
const LINES_PER_GROUP = 8;
export const DEFAULT_RESERVATION_TTL_MS = 10 * 60 * 1000;
const REAP_ON_REFUSAL_EVERY_MS = 1000;

export interface BudgetRules {
  rulesFor(orgId: string, kind: SubjectKind, id: string): readonly BudgetRule[];
}

export interface EconomicsOptions {
  state: HotState;
  rules: BudgetRules;
  defaults: DefaultBudgets;
  clock: Clock;
  audit: AuditSink;
  metrics?: EconomicsMetrics;
  logger?: Logger;
  /** Admit models without a known price (charged 0 money; token and request lines still apply). */
  allowUnpriced?: boolean;
  /** How long a reservation may stay unsettled before the reconciler frees it. */
  reservationTtlMs?: number;
  tracker?: ScopeTracker;
  /** Alert checks per line at most this often (default 1 s; 0 = every settlement). */
  alertCheckIntervalMs?: number;
}

interface Group {
  reservationId: string;
  metric: Metric;
  amount: number;
  lines: ResolvedLine[];
}

/** Builds the CostEstimate the gate takes: priced from the table, or flagged `unpriced`. */
export function costEstimate(model: string, price: ModelPrice | undefined, maxTokens: number, inputTokens?: number): CostEstimate {
  assertAmount(maxTokens, 'maxTokens');
  if (price === undefined) return { model, maxMicros: 0, maxTokens, unpriced: true };
  return { model, maxMicros: estimateCost(price, maxTokens, inputTokens), maxTokens };
}

export class Economics implements EconomicsGate {
  readonly metrics: EconomicsMetrics;
  readonly tracker: ScopeTracker;
  readonly reservationTtlMs: number;
  private readonly alerts: BudgetAlerts;
  private readonly lastReap = new Map<string, number>();

  constructor(private readonly options: EconomicsOptions) {
    this.metrics = options.metrics ?? new EconomicsMetrics();
    this.tracker = options.tracker ?? new ScopeTracker(options.clock);
    this.reservationTtlMs = options.reservationTtlMs ?? DEFAULT_RESERVATION_TTL_MS;
    this.alerts = new BudgetAlerts({
      state: options.state,
      audit: options.audit,
      metrics: this.metrics,
      ...(options.logger === undefined ? {} : { logger: options.logger }),
      ...(options.alertCheckIntervalMs === undefined ? {} : { minIntervalMs: options.alertCheckIntervalMs }),
    });
  }

  /** The lines a request touches right now (explicit budgets from the cache, then defaults). */
  linesFor(request: AdmissionRequest, orgId: string): ResolvedLine[] {
    return resolveLines(
      subjectsOf(request.principal, orgId),
      (kind, id) => this.options.rules.rulesFor(orgId, kind, id),
      this.options.defaults,
      this.options.clock.now(),
    );
  }

  async reserve(request: AdmissionRequest): Promise<EconomicsReservation> {
    const cost = request.cost;
    if (cost !== undefined) {
      assertAmount(cost.maxMicros, 'cost.maxMicros');
      assertAmount(cost.maxTokens, 'cost.maxTokens');
      if (cost.unpriced === true && this.options.allowUnpriced !== true) {
        this.metrics.decisions.inc({ result: 'unknown_price' });
        return { ok: false, refusal: unknownPrice(cost.model) };
      }
    }
    const orgId = request.principal.orgId;
    // Anonymous callers belong to no org and have no budget: rate limits and free models bound them.
    if (orgId === null) return this.admitted(request.requestId, [], '', null, []);
    const scope = budgetScope(orgId);
    const lines = this.linesFor(request, orgId);
    if (this.groups(request, lines, 0).length === 0) return this.admitted(request.requestId, [], scope, orgId, []);

    for (let attempt = 0; ; attempt += 1) {
      // Fresh ids per attempt: ids released by a failed attempt stay remembered as settled.
      const groups = this.groups(request, lines, attempt);
      const outcome = await this.reserveAll(scope, groups);
      if (outcome.kind === 'ok') {
        this.tracker.touch(scope);
        return this.admitted(request.requestId, groups, scope, orgId, groups.flatMap((g) => g.lines));
      }
      if (outcome.kind === 'unavailable') {
        this.metrics.decisions.inc({ result: 'unavailable' });
        return { ok: false, refusal: unavailable() };
      }
      if (outcome.kind === 'duplicate') {
        this.metrics.decisions.inc({ result: 'duplicate' });
        return { ok: false, refusal: duplicate() };
      }
      // Refused while reservations were in flight: some may be leaks, so reap and try once more.
      if (attempt === 0 && outcome.reserved > 0 && (await this.reapNow(scope)) > 0) continue;
      this.metrics.decisions.inc({ result: 'exceeded' });
      return { ok: false, refusal: exceeded(outcome.line, outcome.used, outcome.reserved) };
    }
  }

  private groups(request: AdmissionRequest, lines: ResolvedLine[], attempt: number): Group[] {
    const suffix = attempt === 0 ? '' : `:a${attempt}`;
    const amounts: Record<Metric, number | undefined> = {
      cost: request.cost?.maxMicros,
      tokens: request.cost?.maxTokens,
      requests: 1,
    };
    const groups: Group[] = [];
    for (const metric of ['cost', 'tokens', 'requests'] as const) {
      const amount = amounts[metric];
      // Work without a cost estimate only counts as a request.
      if (amount === undefined) continue;
      const of = lines.filter((l) => l.metric === metric);
      for (let i = 0; i < of.length; i += LINES_PER_GROUP) {
        groups.push({ reservationId: `${request.requestId}:${metric}:${i / LINES_PER_GROUP}${suffix}`, metric, amount, lines: of.slice(i, i + LINES_PER_GROUP) });
      }
    }
    return groups;
  }

  private async reserveAll(
    scope: string,
    groups: Group[],
  ): Promise<{ kind: 'ok' } | { kind: 'unavailable' } | { kind: 'duplicate' } | { kind: 'exceeded'; line: ResolvedLine; used: number; reserved: number }> {
    const results = await Promise.allSettled(
      groups.map((g) =>
        this.options.state.reserve(scope, {
          reservationId: g.reservationId,
          amount: g.amount,
          ttlMs: this.reservationTtlMs,
          lines: g.lines.map((l) => ({ key: l.key, cap: l.cap, expiresAt: l.expiresAt })),
        }),
      ),
    );
    const held = groups.filter((_, i) => {
      const r = results[i];
      return r?.status === 'fulfilled' && r.value.ok;
    });
    if (held.length === groups.length) return { kind: 'ok' };
    // All or nothing across groups: give back what this call did get.
    await this.releaseQuietly(scope, held);
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure !== undefined) {
      if (isHotStateUnavailable(failure.reason)) return { kind: 'unavailable' };
      throw failure.reason;
    }
    for (let i = 0; i < groups.length; i += 1) {
      const r = results[i];
      const group = groups[i];
      if (r?.status !== 'fulfilled' || r.value.ok || group === undefined) continue;
      if (r.value.reason === 'duplicate') return { kind: 'duplicate' };
      const key = r.value.key;
      const line = group.lines.find((l) => l.key === key) ?? group.lines[0];
      if (line !== undefined) return { kind: 'exceeded', line, used: r.value.used, reserved: r.value.reserved };
    }
    throw new AppError('internal', { cause: new Error('economics: reservation refused without a reason') });
  }

  private async releaseQuietly(scope: string, groups: Group[]): Promise<void> {
    await Promise.all(
      groups.map((g) =>
        this.options.state.release(scope, g.reservationId).catch((error: unknown) => {
          // Left for the reconciler: the reservation expires and is reaped.
          this.tracker.touch(scope);
          this.options.logger?.warn({ err: error, reservationId: g.reservationId }, 'releasing a partial reservation failed');
        }),
      ),
    );
  }

  private async reapNow(scope: string): Promise<number> {
    // At most once per scope per second: under real exhaustion every refusal would otherwise reap.
    const now = this.options.clock.now();
    const last = this.lastReap.get(scope);
    if (last !== undefined && now - last < REAP_ON_REFUSAL_EVERY_MS) return 0;
    if (this.lastReap.size >= 10_000) this.lastReap.clear();
    this.lastReap.set(scope, now);
    try {
      const count = await this.options.state.reapReservations(scope);
      if (count > 0) this.metrics.reaped.inc(count);
      return count;
    } catch {
      return 0;
    }
  }

  private admitted(requestId: string, groups: Group[], scope: string, orgId: string | null, lines: ResolvedLine[]): EconomicsReservation {
    this.metrics.decisions.inc({ result: 'admitted' });
    let settling: Promise<void> | undefined;
    return {
      ok: true,
      // Exactly once per reservation object; the hot state is idempotent by reservation id as well.
      settle: (outcome) => (settling ??= this.settle(requestId, groups, scope, orgId, lines, outcome)),
    };
  }

  private async settle(requestId: string, groups: Group[], scope: string, orgId: string | null, lines: ResolvedLine[], outcome: SettleOutcome): Promise<void> {
    if (outcome.kind === 'unmetered') {
      this.metrics.unmetered.inc({ reason: outcome.reason });
      // Audited even without budget lines: an unmetered call is a billing blind spot either way.
      await this.options.audit
        .record({
          actor: 'system',
          orgId,
          action: 'budget.unmetered',
          target: requestId,
          outcome: 'success',
          details: { reason: outcome.reason, chargedMicros: groups.find((g) => g.metric === 'cost')?.amount ?? 0 },
        })
        .catch((error: unknown) => this.options.logger?.warn({ err: error }, 'auditing an unmetered settlement failed'));
    }
    if (groups.length === 0 || orgId === null) return;
    const results = await Promise.allSettled(groups.map((g) => this.settleGroup(scope, g, outcome)));
    const failed = results.filter((r) => r.status === 'rejected');
    this.metrics.settlements.inc({ kind: outcome.kind, result: failed.length === 0 ? 'ok' : 'failed' }, 1);
    if (failed.length > 0) {
      // The reservation stays held until the reconciler reaps it at its ttl (released, not charged).
      this.options.logger?.warn({ failed: failed.length, kind: outcome.kind }, 'budget settlement did not reach the hot state');
    }
    if (outcome.kind !== 'upstream_failure') {
      await this.alerts.check(scope, orgId, lines, this.options.clock.now());
    }
  }

  private async settleGroup(scope: string, group: Group, outcome: SettleOutcome): Promise<void> {
    if (outcome.kind === 'upstream_failure') {
      await this.options.state.release(scope, group.reservationId);
      return;
    }
    await this.options.state.commit(scope, group.reservationId, this.chargeOf(group, outcome));
  }

  /** What to commit on a group: the actual, never above what was reserved; the maximum when unmetered. */
  private chargeOf(group: Group, outcome: Exclude<SettleOutcome, { kind: 'upstream_failure' }>): number {
    if (outcome.kind === 'unmetered' || group.metric === 'requests') return group.amount;
    const actual = group.metric === 'cost' ? outcome.actualMicros : outcome.actualTokens;
    if (!Number.isSafeInteger(actual) || actual < 0) {
      // A nonsense usage report is treated as unknown usage: charged at the reserved maximum.
      this.options.logger?.warn({ metric: group.metric }, 'invalid actual usage; charging the reservation');
      return group.amount;
    }
    if (actual > group.amount) {
      this.metrics.overruns.inc({ metric: group.metric });
      return group.amount;
    }
    return actual;
  }
}

function unknownPrice(model: string): Refusal {
  return {
    gate: 'economics',
    code: 'unknown_price',
    status: 400,
    message: 'The model has no known price and unpriced models are not allowed.',
    limit: { model: model.slice(0, 128) },
  };
}

function unavailable(): Refusal {
  return {
    gate: 'economics',
    code: 'dependency_unavailable',
    status: 503,
    message: 'Budgets cannot be checked right now; the request was refused without side effects.',
    retryAfterSeconds: 5,
  };
}

function duplicate(): Refusal {
  return { gate: 'economics', code: 'conflict', status: 409, message: 'This request id already holds a budget reservation.' };
}

function exceeded(line: ResolvedLine, used: number, reserved: number): Refusal {
  const unit = line.metric === 'cost' ? 'micro-units' : line.metric;
  return {
    gate: 'economics',
    code: 'budget_exceeded',
    status: 402,
    message: `${line.period === 'total' ? 'Total' : line.period === 'day' ? 'Daily' : 'Monthly'} ${line.metric} budget of the ${line.subject.kind} reached (cap ${line.cap} ${unit}).`,
    ...(line.resetInSeconds === undefined ? {} : { retryAfterSeconds: line.resetInSeconds }),
    limit: {
      subject: line.subject.kind,
      metric: line.metric,
      period: line.periodLabel,
      cap: line.cap,
      used,
      reserved,
    },
  };
}
