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
import type { BudgetLine } from '../../store/state/port.js';
import { orgScope } from '../scope.js';
import { counterExpiresAt, PERIODS, periodWindow, type Period } from './periods.js';

export type SubjectKind = 'org' | 'user' | 'key';
export type Metric = 'cost' | 'tokens' | 'requests';
export const METRICS: readonly Metric[] = ['cost', 'tokens', 'requests'];
/** Where a call's reservation holds each metric's amount (`ReserveRequest.amounts`), in METRICS order. */
export const METRIC_AMOUNT_INDEX: Readonly<Record<Metric, number>> = { cost: 0, tokens: 1, requests: 2 };
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

/** The rules of a subject without any: one shared object, so callers can tell "unchanged" by identity. */
export const NO_RULES: readonly BudgetRule[] = Object.freeze([]);

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
  /** When the period resets (ms, UTC); null for total. */
  resetsAt: number | null;
  /** Whether it came from config defaults rather than an explicit budget. */
  isDefault: boolean;
  /** The line as the hot state takes it (built once with the line, shared by every request). */
  spec: Readonly<BudgetLine>;
}

/**
 * The effective lines of one subject: its explicit budgets first, then each default whose (metric,
 * period) it has no explicit budget for.
 */
export function resolveSubjectLines(subject: { kind: SubjectKind; id: string }, own: readonly BudgetRule[], defaults: DefaultBudgets, now: number): ResolvedLine[] {
  const lines: ResolvedLine[] = [];
  if (own.length === 0 && defaults[subject.kind].length === 0) return lines;
  const covered = new Set(own.map((r) => `${r.metric}:${r.period}`));
  const rules: [BudgetRule, boolean][] = [
    ...own.map((r): [BudgetRule, boolean] => [r, false]),
    ...defaults[subject.kind].filter((r) => !covered.has(`${r.metric}:${r.period}`)).map((r): [BudgetRule, boolean] => [r, true]),
  ];
  for (const [rule, isDefault] of rules) {
    const window = periodWindow(rule.period, now);
    const key = lineKey(subject.kind, subject.id, rule.metric, window.label);
    const expiresAt = counterExpiresAt(window, now);
    lines.push({
      key,
      subject,
      metric: rule.metric,
      period: rule.period,
      periodLabel: window.label,
      cap: rule.cap,
      expiresAt,
      alertThresholds: rule.alertThresholds,
      resetsAt: window.endsAt,
      isDefault,
      spec: Object.freeze({ key, cap: rule.cap, expiresAt, amountIndex: METRIC_AMOUNT_INDEX[rule.metric] }),
    });
  }
  return lines;
}

/** The effective lines of these subjects, subject by subject (see resolveSubjectLines). */
export function resolveLines(
  subjects: readonly { kind: SubjectKind; id: string }[],
  explicit: (kind: SubjectKind, id: string) => readonly BudgetRule[],
  defaults: DefaultBudgets,
  now: number,
): ResolvedLine[] {
  return subjects.flatMap((subject) => resolveSubjectLines(subject, explicit(subject.kind, subject.id), defaults, now));
}

/** Until when these lines stay what they are: the first reset among them (Infinity for total only). */
export function linesValidUntil(lines: readonly ResolvedLine[]): number {
  let until = Number.POSITIVE_INFINITY;
  for (const line of lines) if (line.resetsAt !== null && line.resetsAt < until) until = line.resetsAt;
  return until;
}

export { PERIODS };
