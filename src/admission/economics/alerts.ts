/**
 * Alert thresholds: when a line's committed usage reaches a threshold (say 80 % of its cap) an
 * audit event and a metric are emitted, once per line, cap and period across all replicas. The
 * "once" is a `setIfAbsent` marker in the hot state that lives until the counter does; a local
 * memo skips the round trip for thresholds this replica already knows have fired. The marker key
 * includes the cap, so raising a cap re-arms its alerts.
 */
import type { AuditSink } from '../../audit/sink.js';
import type { Logger } from '../../core/logger.js';
import type { HotState } from '../../store/state/port.js';
import type { ResolvedLine } from './definitions.js';
import type { EconomicsMetrics } from './metrics.js';
import { reachedPercent } from './money.js';

const MEMO_LIMIT = 10_000;

export interface AlertDeps {
  state: Pick<HotState, 'budgetUsage' | 'setIfAbsent'>;
  audit: AuditSink;
  metrics: EconomicsMetrics;
  logger?: Logger;
  /**
   * A line is read at most this often per replica (default 1 s); settlements in between are
   * covered by one trailing check, so a busy line costs one usage read per second, not one per
   * request, and the last crossing before a quiet spell is still seen. 0 checks on every settle.
   */
  minIntervalMs?: number;
}

interface Pending {
  scope: string;
  orgId: string;
  line: ResolvedLine;
}

export class BudgetAlerts {
  private readonly fired = new Set<string>();
  private readonly lastCheck = new Map<string, number>();
  private readonly trailing = new Map<string, Pending>();
  private readonly minIntervalMs: number;

  constructor(private readonly deps: AlertDeps) {
    this.minIntervalMs = deps.minIntervalMs ?? 1000;
  }

  /** Checks these lines after a commit; never throws (alerts must not fail a settled request). */
  async check(scope: string, orgId: string, lines: readonly ResolvedLine[], now: number): Promise<void> {
    await Promise.all(lines.filter((l) => l.alertThresholds.length > 0).map((l) => this.throttled(scope, orgId, l, now)));
  }

  private async throttled(scope: string, orgId: string, line: ResolvedLine, now: number): Promise<void> {
    if (this.minIntervalMs > 0) {
      const last = this.lastCheck.get(line.key);
      if (last !== undefined && now - last < this.minIntervalMs) {
        this.scheduleTrailing({ scope, orgId, line });
        return;
      }
      if (this.lastCheck.size >= MEMO_LIMIT) this.lastCheck.clear();
      this.lastCheck.set(line.key, now);
    }
    await this.checkLine(scope, orgId, line, now);
  }

  private scheduleTrailing(pending: Pending): void {
    if (this.trailing.has(pending.line.key)) return;
    this.trailing.set(pending.line.key, pending);
    const timer = setTimeout(() => {
      this.trailing.delete(pending.line.key);
      void this.checkLine(pending.scope, pending.orgId, pending.line, Date.now());
    }, this.minIntervalMs);
    timer.unref();
  }

  private async checkLine(scope: string, orgId: string, line: ResolvedLine, now: number): Promise<void> {
    try {
      const pending = line.alertThresholds.filter((t) => !this.fired.has(markerKey(line, t)));
      if (pending.length === 0) return;
      const { used } = await this.deps.state.budgetUsage(scope, line.key);
      const reached = pending.filter((t) => reachedPercent(used, line.cap, t));
      const ttlMs = Math.max(1, line.expiresAt - now);
      for (const threshold of reached) {
        const marker = markerKey(line, threshold);
        const first = await this.deps.state.setIfAbsent(scope, marker, '1', ttlMs);
        this.remember(marker);
        if (first) await this.emit(orgId, line, threshold, used);
      }
    } catch (error) {
      this.deps.logger?.warn({ err: error, orgId, line: line.key }, 'budget alert check failed');
    }
  }

  private async emit(orgId: string, line: ResolvedLine, threshold: number, used: number): Promise<void> {
    this.deps.metrics.alerts.inc({ subject_kind: line.subject.kind, metric: line.metric, period: line.period, threshold: String(threshold) });
    await this.deps.audit.record({
      actor: 'system',
      orgId,
      action: 'budget.alert',
      target: `${line.subject.kind}:${line.subject.id}`,
      outcome: 'success',
      details: {
        subjectKind: line.subject.kind,
        subjectId: line.subject.id,
        metric: line.metric,
        period: line.periodLabel,
        threshold,
        used,
        cap: line.cap,
      },
    });
  }

  private remember(marker: string): void {
    // Bounded: forgetting only costs a round trip, the hot-state marker still says "fired".
    if (this.fired.size >= MEMO_LIMIT) this.fired.clear();
    this.fired.add(marker);
  }
}

function markerKey(line: ResolvedLine, threshold: number): string {
  return `alert:${line.key}:${line.cap}:${threshold}`;
}
