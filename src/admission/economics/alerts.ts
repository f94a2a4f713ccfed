/**
 * Alert thresholds: when a line's committed usage reaches a threshold (say 80 % of its cap) an
 * audit event and a metric are emitted, once per line, cap and period across all replicas. The
 * usage comes back with the settlement itself (`settleReservations` reports the committed usage
 * of every line it moved), so checking costs no read; only a threshold reached for the first time
 * costs a round trip: the "once" is a `setIfAbsent` marker in the hot state that lives until the
 * counter does, and a local memo skips even that for thresholds this replica knows have fired. The
 * marker key includes the cap, so raising a cap re-arms its alerts.
 */
import type { AuditSink } from '../../audit/sink.js';
import type { Logger } from '../../core/logger.js';
import type { HotState, SettleManyResult } from '../../store/state/port.js';
import type { ResolvedLine } from './definitions.js';
import type { EconomicsMetrics } from './metrics.js';
import { reachedPercent } from './money.js';

const MEMO_LIMIT = 10_000;

export interface AlertDeps {
  state: Pick<HotState, 'setIfAbsent'>;
  audit: AuditSink;
  metrics: EconomicsMetrics;
  logger?: Logger;
}

export class BudgetAlerts {
  private readonly fired = new Set<string>();

  constructor(private readonly deps: AlertDeps) {}

  /** Checks these lines against the usage a settlement reported; never throws (alerts must not fail a settled request). */
  async check(scope: string, orgId: string, lines: readonly ResolvedLine[], used: SettleManyResult['used'], now: number): Promise<void> {
    const usage = new Map(used.map((u) => [u.key, u.used]));
    await Promise.all(
      lines.map(async (line) => {
        const committed = usage.get(line.key);
        if (committed === undefined || line.alertThresholds.length === 0) return;
        await this.checkLine(scope, orgId, line, committed, now);
      }),
    );
  }

  private async checkLine(scope: string, orgId: string, line: ResolvedLine, used: number, now: number): Promise<void> {
    try {
      const reached = line.alertThresholds.filter((t) => !this.fired.has(markerKey(line, t)) && reachedPercent(used, line.cap, t));
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

/** Whether any of the lines has an alert threshold; most budgets have none, and then settlement skips `check`. */
export function hasThresholds(lines: readonly ResolvedLine[]): boolean {
  for (const line of lines) if (line.alertThresholds.length > 0) return true;
  return false;
}

function markerKey(line: ResolvedLine, threshold: number): string {
  return `alert:${line.key}:${line.cap}:${threshold}`;
}
