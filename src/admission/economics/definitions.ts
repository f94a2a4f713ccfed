/**
 * What a budget is, and which budget lines one request touches.
 *
 * A budget is (subject, metric, period, cap, alert thresholds). The subject is the org, one of its
 * users, or one of its keys; the metric is money (`cost`, micro-units), `tokens`, or `requests`.
 * Each is a separate line with its own counter. A request touches the lines of its org, of its
 * user in that org, and of its key, for every metric and period that has a budget.
 *
 * Defaults come from config and apply to every org, user and key that has no explicit budget of
 * the same metric and period. Because a line's counter key depends only on (subject, metric,
 * period) and the cap travels with every reservation, a default needs no "creation" step at all:
 * every replica that applies it reserves against the same counter, atomically, so concurrent first
 * requests can never each get a fresh cap.
 */
import { z } from 'zod';
import type { Principal } from '../../identity/principal.js';
import { orgScope } from '../scope.js';
import { counterExpiresAt, PERIODS, periodWindow, secondsUntilReset, type Period } from './periods.js';

export type SubjectKind = 'org' | 'user' | 'key';
export type Metric = 'cost' | 'tokens' | 'requests';
export const METRICS: readonly Metric[] = ['cost', 'tokens', 'requests'];
export const SUBJECT_KINDS: readonly SubjectKind[] = ['org', 'user', 'key'];
export const DEFAULT_ALERT_THRESHOLDS: readonly number[] = [50, 80, 100];

/** A budget for one subject kind, without the subject: the shape of a config default. */
export interface BudgetRule {
  metric: Metric;
  period: Period;
  /** Integer units: micro-units of money, tokens, or requests. */
  cap: number;
  /** Percentages of the cap (1..100) at which an alert fires, once per period. */
  alertThresholds: readonly number[];
}

export interface BudgetDefinition extends BudgetRule {
  orgId: string;
  subject: { kind: SubjectKind; id: string };
}

export interface DefaultBudgets {
  org: readonly BudgetRule[];
  user: readonly BudgetRule[];
  key: readonly BudgetRule[];
}

export const NO_DEFAULTS: DefaultBudgets = { org: [], user: [], key: [] };

const thresholds = z
  .array(z.number().int().min(1).max(100))
  .max(10)
  .refine((list) => new Set(list).size === list.length, 'thresholds must be distinct');

export const budgetRuleSchema = z
  .object({
    metric: z.enum(['cost', 'tokens', 'requests']),
    period: z.enum(['day', 'month', 'total']),
    cap: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    alertThresholds: thresholds.default([...DEFAULT_ALERT_THRESHOLDS]),
  })
  .strict();

/** No two rules of one subject may share (metric, period): that would be two caps on one counter. */
export function duplicateRule(rules: readonly { metric: Metric; period: Period; subject?: { kind: string; id: string } }[]): string | null {
  const seen = new Set<string>();
  for (const r of rules) {
    const id = `${r.subject?.kind ?? ''}:${r.subject?.id ?? ''}:${r.metric}:${r.period}`;
    if (seen.has(id)) return id;
    seen.add(id);
  }
  return null;
}

export const defaultBudgetsSchema = z
  .object({
    org: z.array(budgetRuleSchema).max(9).default([]),
    user: z.array(budgetRuleSchema).max(9).default([]),
    key: z.array(budgetRuleSchema).max(9).default([]),
  })
  .strict()
  .superRefine((d, ctx) => {
    for (const kind of SUBJECT_KINDS) {
      if (duplicateRule(d[kind]) !== null) ctx.addIssue({ code: 'custom', path: [kind], message: 'two budgets with the same metric and period' });
    }
  });

/** Hot-state scope of an org's budget lines: every line and reservation of the org in one slot (see admission/scope.ts). */
export const budgetScope = orgScope;

/** Counter key of a line, e.g. `budget:org:org_x:cost:month:2026-11`. */
export function lineKey(kind: SubjectKind, subjectId: string, metric: Metric, periodLabel: string): string {
  return `budget:${kind}:${subjectId}:${metric}:${periodLabel}`;
}

/** One line a request touches, resolved for the current period. */
export interface ResolvedLine {
  key: string;
  subject: { kind: SubjectKind; id: string };
  metric: Metric;
  period: Period;
  periodLabel: string;
  cap: number;
  expiresAt: number;
  alertThresholds: readonly number[];
  /** Seconds until the period resets; undefined for total. */
  resetInSeconds: number | undefined;
  /** Whether it came from config defaults rather than an explicit budget. */
  isDefault: boolean;
}

/** The subjects a principal spends against within its org. */
export function subjectsOf(principal: Principal, orgId: string): { kind: SubjectKind; id: string }[] {
  const out: { kind: SubjectKind; id: string }[] = [{ kind: 'org', id: orgId }];
  if (principal.userId !== null) out.push({ kind: 'user', id: principal.userId });
  if (principal.keyId !== undefined) out.push({ kind: 'key', id: principal.keyId });
  return out;
}

/**
 * The effective lines of these subjects: explicit budgets first, then each default whose (metric,
 * period) the subject has no explicit budget for.
 */
export function resolveLines(
  subjects: readonly { kind: SubjectKind; id: string }[],
  explicit: (kind: SubjectKind, id: string) => readonly BudgetRule[],
  defaults: DefaultBudgets,
  now: number,
): ResolvedLine[] {
  const lines: ResolvedLine[] = [];
  for (const subject of subjects) {
    const own = explicit(subject.kind, subject.id);
    // Most subjects have no budget at all; this runs on every priced request.
    if (own.length === 0 && defaults[subject.kind].length === 0) continue;
    const covered = new Set(own.map((r) => `${r.metric}:${r.period}`));
    const rules: [BudgetRule, boolean][] = [
      ...own.map((r): [BudgetRule, boolean] => [r, false]),
      ...defaults[subject.kind].filter((r) => !covered.has(`${r.metric}:${r.period}`)).map((r): [BudgetRule, boolean] => [r, true]),
    ];
    for (const [rule, isDefault] of rules) {
      const window = periodWindow(rule.period, now);
      lines.push({
        key: lineKey(subject.kind, subject.id, rule.metric, window.label),
        subject,
        metric: rule.metric,
        period: rule.period,
        periodLabel: window.label,
        cap: rule.cap,
        expiresAt: counterExpiresAt(window, now),
        alertThresholds: rule.alertThresholds,
        resetInSeconds: secondsUntilReset(window, now),
        isDefault,
      });
    }
  }
  return lines;
}

export { PERIODS };
