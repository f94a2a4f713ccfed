/**
 * Budget admin API: read and replace an org's budgets (the org, its users, its keys) and read the
 * current usage of every line. All three need the "manage budgets" permission in the org; a caller
 * outside the org gets 404 whether or not the org exists. Changes and denials are audited; a
 * change reloads the cache here at once and reaches other replicas over pub/sub.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AuditSink } from '../../audit/sink.js';
import type { Clock } from '../../core/clock.js';
import { AppError } from '../../core/errors.js';
import { defineRoute, type RouteRegistry } from '../../http/route.js';
import type { Principal } from '../../identity/principal.js';
import { can, principalInOrg } from '../../identity/tenancy/index.js';
import type { Db } from '../../store/db/schema.js';
import type { HotState } from '../../store/state/port.js';
import type { BudgetCache } from './budget-cache.js';
import { loadOrgBudgets, orgSubjects, replaceOrgBudgets } from './budget-records.js';
import {
  budgetRuleSchema,
  budgetScope,
  duplicateRule,
  resolveLines,
  type BudgetDefinition,
  type DefaultBudgets,
  type SubjectKind,
} from './definitions.js';

const MAX_BUDGETS_PER_ORG = 500;
/** Users and keys shown in the usage view; each line costs one hot-state read. */
const MAX_USAGE_SUBJECTS = 100;

const orgParams = z.object({ orgId: z.string().regex(/^org_[A-Za-z0-9_-]{16}$/, 'must be an org_ id') }).strict();
const subject = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('org') }).strict(),
  z.object({ kind: z.literal('user'), id: z.string().regex(/^usr_[A-Za-z0-9_-]{16}$/, 'must be a usr_ id') }).strict(),
  z.object({ kind: z.literal('key'), id: z.string().regex(/^key_[A-Za-z0-9_-]{16}$/, 'must be a key_ id') }).strict(),
]);
const putBody = z
  .object({ budgets: z.array(budgetRuleSchema.extend({ subject })).max(MAX_BUDGETS_PER_ORG) })
  .strict()
  .refine((b) => duplicateRule(b.budgets.map((x) => ({ ...x, subject: { kind: x.subject.kind, id: 'id' in x.subject ? x.subject.id : '' } }))) === null, {
    message: 'two budgets of one subject share a metric and period',
    path: ['budgets'],
  });

export interface BudgetRouteDeps {
  db: Db;
  state: Pick<HotState, 'budgetUsage'>;
  cache: BudgetCache;
  defaults: DefaultBudgets;
  audit: AuditSink;
  clock: Clock;
}

interface BudgetView {
  subject: { kind: SubjectKind; id: string };
  metric: string;
  period: string;
  cap: number;
  alertThresholds: readonly number[];
}

function view(d: BudgetDefinition): BudgetView {
  return { subject: d.subject, metric: d.metric, period: d.period, cap: d.cap, alertThresholds: d.alertThresholds };
}

function actorOf(principal: Principal): string {
  return principal.userId ?? principal.id;
}

export function registerBudgetRoutes(app: FastifyInstance, registry: RouteRegistry, deps: BudgetRouteDeps): void {
  const tags = ['admin', 'budgets'];

  /** 404 outside the org, 403 (audited) without the permission. */
  const authorize = async (principal: Principal, orgId: string, action: string): Promise<Principal> => {
    const inOrg = await principalInOrg(deps.db, principal, orgId);
    if (inOrg === null) throw new AppError('not_found');
    if (!can(inOrg, 'budgets.manage', orgId)) {
      await deps.audit.record({ actor: actorOf(inOrg), orgId, action, target: orgId, outcome: 'denied', details: { via: inOrg.kind } });
      throw new AppError('forbidden');
    }
    return inOrg;
  };

  defineRoute(app, registry, {
    method: 'GET', url: '/api/orgs/:orgId/budgets', summary: "Read an org's budgets and the configured defaults", tags, auth: 'required',
    params: orgParams,
    handler: async ({ principal, params }) => {
      await authorize(principal, params.orgId, 'budgets.read');
      return { budgets: (await loadOrgBudgets(deps.db, params.orgId)).map(view), defaults: deps.defaults };
    },
  });

  defineRoute(app, registry, {
    method: 'PUT', url: '/api/orgs/:orgId/budgets', summary: "Replace an org's budgets (org, users, keys)", tags, auth: 'required',
    params: orgParams, body: putBody,
    handler: async ({ principal, params, body }) => {
      const actor = await authorize(principal, params.orgId, 'budgets.update');
      const definitions: BudgetDefinition[] = body.budgets.map((b) => ({
        orgId: params.orgId,
        subject: { kind: b.subject.kind, id: b.subject.kind === 'org' ? params.orgId : b.subject.id },
        metric: b.metric,
        period: b.period,
        cap: b.cap,
        alertThresholds: b.alertThresholds,
      }));
      await replaceOrgBudgets(deps.db, params.orgId, definitions, actorOf(actor));
      await deps.audit.record({
        actor: actorOf(actor),
        orgId: params.orgId,
        action: 'budgets.update',
        target: params.orgId,
        outcome: 'success',
        details: { count: definitions.length, via: actor.kind },
      });
      await deps.cache.changed(params.orgId);
      return { budgets: definitions.map(view) };
    },
  });

  defineRoute(app, registry, {
    method: 'GET', url: '/api/orgs/:orgId/budgets/usage', summary: 'Current used and reserved amounts of every budget line', tags, auth: 'required',
    params: orgParams,
    handler: async ({ principal, params }) => {
      await authorize(principal, params.orgId, 'budgets.read');
      const orgId = params.orgId;
      const { users, keys } = await orgSubjects(deps.db, orgId, MAX_USAGE_SUBJECTS);
      const subjects = [
        { kind: 'org' as const, id: orgId },
        ...users.map((id) => ({ kind: 'user' as const, id })),
        ...keys.map((id) => ({ kind: 'key' as const, id })),
      ];
      const now = deps.clock.now();
      const lines = resolveLines(subjects, (kind, id) => deps.cache.rulesFor(orgId, kind, id), deps.defaults, now);
      const scope = budgetScope(orgId);
      const usage = await Promise.all(lines.map((l) => deps.state.budgetUsage(scope, l.key)));
      return {
        lines: lines.map((l, i) => ({
          subject: l.subject,
          metric: l.metric,
          period: l.periodLabel,
          cap: l.cap,
          used: usage[i]?.used ?? 0,
          reserved: usage[i]?.reserved ?? 0,
          isDefault: l.isDefault,
        })),
        truncated: users.length === MAX_USAGE_SUBJECTS || keys.length === MAX_USAGE_SUBJECTS,
      };
    },
  });
}
