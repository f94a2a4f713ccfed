/**
 * The economics gate: before a call, reserve its most possible cost on every budget line it
 * touches; after it, commit the actual and release the rest (or release all when the upstream did
 * no billable work). Refusals are values; a hot state that cannot be reached refuses with 503
 * `dependency_unavailable` before any provider call (budgets fail closed).
 *
 * A call holds ONE reservation for all its lines (more only past 8 lines), carrying the amount of
 * each metric — money in micro-units, tokens, and requests (always 1) — with every line taking its
 * metric's amount: one record, one index entry and one expiry per call instead of one per metric.
 * `plan` works out the groups in-process; the pipeline reserves them all in ONE atomic hot-state
 * step together with the rate-limit windows (all in the org's scope, one Redis slot), so either
 * every group is held or none is. `reserve` does the same step without windows, for callers outside
 * the pipeline. Settlement is one step as well: every group committed or released at once, the
 * committed usage it reports feeding alerts.
 */
import type { AuditSink } from '../../audit/sink.js';
import type { Clock } from '../../core/clock.js';
import { AppError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { isHotStateUnavailable } from '../../store/state/errors.js';
import type { HotState, ReserveRequest, SettleManyResult } from '../../store/state/port.js';
import { admissionScope } from '../scope.js';
import type { AdmissionRequest, CostEstimate, EconomicsGate, EconomicsPlan, Refusal, ReservationRefusal, SettleOutcome } from '../types.js';
import { BudgetAlerts, hasThresholds } from './alerts.js';
import { linesValidUntil, METRIC_AMOUNT_INDEX, METRICS, resolveSubjectLines, type BudgetRule, type DefaultBudgets, type Metric, type ResolvedLine, type SubjectKind } from './definitions.js';
import { EconomicsMetrics } from './metrics.js';
import { assertAmount, estimateCost, type ModelPrice } from './money.js';
import { ScopeTracker } from './reconciler.js';
import { secondsUntilReset } from './periods.js';

/** The hot state allows at most this many lines per reservation. */
const LINES_PER_GROUP = 8;
export const DEFAULT_RESERVATION_TTL_MS = 10 * 60 * 1000;

/** Shared by every plan without budget lines; never mutated. */
const NO_LINES: readonly ResolvedLine[] = [];
const NO_GROUPS: Group[] = [];
const NO_RESERVATIONS: ReserveRequest[] = [];
const NO_AMOUNTS: number[] = [];
const NOTHING_TO_SETTLE: Promise<void> = Promise.resolve();
/** Subjects whose resolved lines are kept (key ids of one replica's busy callers); cleared when full. */
export const MAX_CACHED_SUBJECTS = 10_000;

interface CachedLines {
  own: readonly BudgetRule[];
  lines: readonly ResolvedLine[];
  validUntil: number;
}

export interface BudgetRules {
  rulesFor(orgId: string, kind: SubjectKind, id: string): readonly BudgetRule[];
  /** Whether any subject of the org has an explicit budget; false lets a request skip resolving lines. */
  hasRules(orgId: string): boolean;
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
}

/** What a plan holds: its reservations and the amounts each carries (one per metric). */
interface Held {
  groups: Group[];
  amounts: readonly number[];
}

/** A budget reservation on its own (outside the pipeline): settle it exactly once. */
export type EconomicsReservation = { ok: true; settle(outcome: SettleOutcome): Promise<void> } | { ok: false; refusal: Refusal };

/** One reservation of a call: up to 8 of its lines, each taking its metric's amount of `amounts`. */
interface Group {
  reservationId: string;
  lines: readonly ResolvedLine[];
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
  /** Config defaults apply to every subject, so with any of them every request resolves lines. */
  private readonly hasDefaults: boolean;
  /** orgId → subject kind → subject id → its lines; nested so that a request builds no key string. */
  readonly #lines = new Map<string, Map<SubjectKind, Map<string, CachedLines>>>();
  #cachedSubjects = 0;

  constructor(private readonly options: EconomicsOptions) {
    this.metrics = options.metrics ?? new EconomicsMetrics();
    this.tracker = options.tracker ?? new ScopeTracker(options.clock);
    this.reservationTtlMs = options.reservationTtlMs ?? DEFAULT_RESERVATION_TTL_MS;
    this.hasDefaults = options.defaults.org.length + options.defaults.user.length + options.defaults.key.length > 0;
    this.alerts = new BudgetAlerts({
      state: options.state,
      audit: options.audit,
      metrics: this.metrics,
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    });
  }

  /** The lines a request touches right now (explicit budgets from the cache, then defaults). */
  linesFor(request: AdmissionRequest, orgId: string): readonly ResolvedLine[] {
    const now = this.options.clock.now();
    const { principal } = request;
    const org = this.#subjectLines(orgId, 'org', orgId, now);
    const user = principal.userId === null ? NO_LINES : this.#subjectLines(orgId, 'user', principal.userId, now);
    const key = principal.keyId === undefined ? NO_LINES : this.#subjectLines(orgId, 'key', principal.keyId, now);
    // Usually one subject has budgets (the org): its lines are used as they are, without a copy.
    if (user.length === 0 && key.length === 0) return org;
    if (org.length === 0 && key.length === 0) return user;
    if (org.length === 0 && user.length === 0) return key;
    return [...org, ...user, ...key];
  }

  /**
   * A subject's resolved lines, kept while its rules are the same objects (the budget cache replaces
   * them on every change) and its periods last: line keys, caps and expiry are built once a period
   * rather than on every request.
   */
  #subjectLines(orgId: string, kind: SubjectKind, id: string, now: number): readonly ResolvedLine[] {
    const own = this.options.rules.rulesFor(orgId, kind, id);
    if (own.length === 0 && this.options.defaults[kind].length === 0) return NO_LINES;
    // Per org too: a user of two orgs has a budget (and so rules) in each.
    const cached = this.#lines.get(orgId)?.get(kind)?.get(id);
    if (cached !== undefined && cached.own === own && now < cached.validUntil) return cached.lines;
    const lines = resolveSubjectLines({ kind, id }, own, this.options.defaults, now);
    // Bounded: when full the cache starts over, and lines are resolved again as subjects come back.
    if (cached === undefined) {
      if (this.#cachedSubjects >= MAX_CACHED_SUBJECTS) {
        this.#lines.clear();
        this.#cachedSubjects = 0;
      }
      this.#cachedSubjects += 1;
    }
    this.#subjectsOf(orgId, kind).set(id, { own, lines, validUntil: linesValidUntil(lines) });
    return lines;
  }

  /** The cached subjects of one kind in one org, created empty when new. */
  #subjectsOf(orgId: string, kind: SubjectKind): Map<string, CachedLines> {
    let byKind = this.#lines.get(orgId);
    if (byKind === undefined) {
      byKind = new Map();
      this.#lines.set(orgId, byKind);
    }
    let byId = byKind.get(kind);
    if (byId === undefined) {
      byId = new Map();
      byKind.set(kind, byId);
    }
    return byId;
  }

  plan(request: AdmissionRequest): EconomicsPlan {
    const cost = request.cost;
    if (cost !== undefined) {
      assertAmount(cost.maxMicros, 'cost.maxMicros');
      assertAmount(cost.maxTokens, 'cost.maxTokens');
      if (cost.unpriced === true && this.options.allowUnpriced !== true) {
        this.metrics.decisions.inc({ result: 'unknown_price' });
        return { ok: false, refusal: unknownPrice(cost.model) };
      }
    }
    const scope = admissionScope(request.principal);
    const orgId = request.principal.orgId;
    // Anonymous callers belong to no org and have no budget: rate limits and free models bound them.
    const lines = orgId === null || (!this.hasDefaults && !this.options.rules.hasRules(orgId)) ? NO_LINES : this.linesFor(request, orgId);
    const groups = this.groups(request, lines);
    // In METRIC_AMOUNT_INDEX order. Work without a cost estimate reserves no money or tokens (its
    // lines of those metrics are left out), so those amounts are 0 and no line takes them.
    const amounts = groups.length === 0 ? NO_AMOUNTS : [request.cost?.maxMicros ?? 0, request.cost?.maxTokens ?? 0, 1];
    return {
      ok: true,
      scope,
      reservations: groups.length === 0 ? NO_RESERVATIONS : groups.map((g): ReserveRequest => ({
        reservationId: g.reservationId,
        amounts,
        ttlMs: this.reservationTtlMs,
        lines: g.lines.map((l) => l.spec),
      })),
      refused: (outcome) => this.refusal(groups, outcome),
      held: (reaped) => {
        this.countReaped(reaped);
        this.metrics.decisions.inc({ result: 'admitted' });
        if (groups.length > 0) this.tracker.touch(scope);
        let settling: Promise<void> | undefined;
        // Exactly once per plan; the hot state is idempotent by reservation id as well.
        return (outcome) => (settling ??= this.settle(request.requestId, { groups, amounts }, scope, orgId, lines, outcome));
      },
    };
  }

  /** Reserves a request's budget in one hot-state step, without rate-limit windows. */
  async reserve(request: AdmissionRequest): Promise<EconomicsReservation> {
    const plan = this.plan(request);
    if (!plan.ok) return plan;
    if (plan.reservations.length === 0) return { ok: true, settle: plan.held(0) };
    try {
      const result = await this.options.state.admit(plan.scope, { reservations: plan.reservations });
      if (result.ok) return { ok: true, settle: plan.held(result.reaped) };
      if (result.refusedBy === 'duplicate' || result.refusedBy === 'exceeded') return { ok: false, refusal: plan.refused(result) };
    } catch (error) {
      if (isHotStateUnavailable(error)) return { ok: false, refusal: plan.refused({ refusedBy: 'unavailable' }) };
      throw error;
    }
    throw new AppError('internal', { cause: new Error('economics: a reservation step without windows refused as a window') });
  }

  private groups(request: AdmissionRequest, lines: readonly ResolvedLine[]): Group[] {
    // Most callers have no budget line at all: nothing to group, on every priced request.
    if (lines.length === 0) return NO_GROUPS;
    // Work without a cost estimate only counts as a request.
    const held = request.cost === undefined ? lines.filter((l) => l.metric === 'requests') : lines;
    if (held.length === 0) return NO_GROUPS;
    if (held.length <= LINES_PER_GROUP) return [{ reservationId: `${request.requestId}:0`, lines: held }];
    const groups: Group[] = [];
    for (let i = 0; i < held.length; i += LINES_PER_GROUP) {
      groups.push({ reservationId: `${request.requestId}:${i / LINES_PER_GROUP}`, lines: held.slice(i, i + LINES_PER_GROUP) });
    }
    return groups;
  }

  private refusal(groups: Group[], outcome: ReservationRefusal | { refusedBy: 'unavailable' }): Refusal {
    if (outcome.refusedBy === 'unavailable') {
      this.metrics.decisions.inc({ result: 'unavailable' });
      return unavailable();
    }
    this.countReaped(outcome.reaped);
    if (outcome.refusedBy === 'duplicate') {
      this.metrics.decisions.inc({ result: 'duplicate' });
      return duplicate();
    }
    const group = groups[outcome.reservation];
    const line = group?.lines.find((l) => l.key === outcome.key);
    if (line === undefined) throw new AppError('internal', { cause: new Error('economics: the store refused a line this plan does not have') });
    this.metrics.decisions.inc({ result: 'exceeded' });
    return exceeded(line, outcome.used, outcome.reserved, this.options.clock.now());
  }

  private countReaped(count: number): void {
    if (count > 0) this.metrics.reaped.inc(count);
  }

  private settle(requestId: string, held: Held, scope: string, orgId: string | null, lines: readonly ResolvedLine[], outcome: SettleOutcome): Promise<void> {
    // Nothing reserved and nothing to audit (the common ending) needs no promise chain.
    if (outcome.kind !== 'unmetered' && (held.groups.length === 0 || orgId === null)) return NOTHING_TO_SETTLE;
    return this.settleReserved(requestId, held, scope, orgId, lines, outcome);
  }

  private async settleReserved(requestId: string, { groups, amounts }: Held, scope: string, orgId: string | null, lines: readonly ResolvedLine[], outcome: SettleOutcome): Promise<void> {
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
          details: { reason: outcome.reason, chargedMicros: holdsMetric(groups, 'cost') ? (amounts[METRIC_AMOUNT_INDEX.cost] ?? 0) : 0 },
        })
        .catch((error: unknown) => this.options.logger?.warn({ err: error }, 'auditing an unmetered settlement failed'));
    }
    if (groups.length === 0 || orgId === null) return;
    const commit = outcome.kind === 'upstream_failure' ? null : this.charges(amounts, groups, outcome);
    const settlements = groups.map((g) => ({ reservationId: g.reservationId, commit }));
    let settled: SettleManyResult;
    try {
      settled = await this.options.state.settleReservations(scope, settlements);
    } catch (error) {
      // The reservation stays held until the reconciler reaps it at its ttl (released, not charged).
      this.metrics.settlements.inc({ kind: outcome.kind, result: 'failed' });
      this.options.logger?.warn({ err: error, kind: outcome.kind }, 'budget settlement did not reach the hot state');
      return;
    }
    this.metrics.settlements.inc({ kind: outcome.kind, result: 'ok' });
    if (outcome.kind !== 'upstream_failure' && hasThresholds(lines)) await this.alerts.check(scope, orgId, lines, settled.used, this.options.clock.now());
  }

  /** What to commit, per reserved amount: the actual, never above what was reserved; the maximum when unmetered. */
  private charges(amounts: readonly number[], groups: Group[], outcome: Exclude<SettleOutcome, { kind: 'upstream_failure' }>): number[] {
    return METRICS.map((metric) => {
      const reserved = amounts[METRIC_AMOUNT_INDEX[metric]] ?? 0;
      if (outcome.kind === 'unmetered' || metric === 'requests') return reserved;
      const actual = metric === 'cost' ? outcome.actualMicros : outcome.actualTokens;
      // An amount no line takes moves no counter: only a line's metric is worth a warning or an overrun.
      const charged = holdsMetric(groups, metric);
      if (!Number.isSafeInteger(actual) || actual < 0) {
        // A nonsense usage report is treated as unknown usage: charged at the reserved maximum.
        if (charged) this.options.logger?.warn({ metric }, 'invalid actual usage; charging the reservation');
        return reserved;
      }
      if (actual > reserved) {
        if (charged) this.metrics.overruns.inc({ metric });
        return reserved;
      }
      return actual;
    });
  }
}

/** Whether any line of the call's reservations is of `metric` (an amount no line takes moves nothing). */
function holdsMetric(groups: readonly Group[], metric: Metric): boolean {
  return groups.some((g) => g.lines.some((l) => l.metric === metric));
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

function exceeded(line: ResolvedLine, used: number, reserved: number, now: number): Refusal {
  const unit = line.metric === 'cost' ? 'micro-units' : line.metric;
  return {
    gate: 'economics',
    code: 'budget_exceeded',
    status: 402,
    message: `${line.period === 'total' ? 'Total' : line.period === 'day' ? 'Daily' : 'Monthly'} ${line.metric} budget of the ${line.subject.kind} reached (cap ${line.cap} ${unit}).`,
    ...(line.resetsAt === null ? {} : { retryAfterSeconds: secondsUntilReset(line.resetsAt, now) }),
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
