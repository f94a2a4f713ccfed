/** Test helpers for the economics gate: a principal, a request, and a static rule table. */
import type { Principal } from '../../identity/principal.js';
import type { AdmissionRequest, CostEstimate } from '../types.js';
import { NO_RULES, type BudgetRule, type SubjectKind } from './definitions.js';
import type { BudgetRules } from './economics-gate.js';

export function budgetPrincipal(orgId: string, userId = 'usr_test', keyId?: string): Principal {
  return {
    kind: 'api_key',
    id: keyId ?? userId,
    userId,
    orgId,
    role: 'member',
    userType: 'paid',
    platformAdmin: false,
    scopes: ['models'],
    ...(keyId === undefined ? {} : { keyId }),
    ip: '127.0.0.1',
  };
}

let sequence = 0;

export function modelRequest(principal: Principal, cost?: Partial<CostEstimate>, requestId?: string): AdmissionRequest {
  sequence += 1;
  return {
    principal,
    route: '/v1/chat/completions',
    requestId: requestId ?? `req_test_${sequence}`,
    ...(cost === undefined ? {} : { cost: { model: 'test-model', maxMicros: 0, maxTokens: 0, ...cost } }),
    kind: 'sync',
  };
}

/** Explicit budgets held in a map, standing in for the record-store cache. */
export class StaticRules implements BudgetRules {
  private readonly rules = new Map<string, BudgetRule[]>();

  private readonly orgs = new Set<string>();

  set(orgId: string, kind: SubjectKind, id: string, rules: BudgetRule[]): this {
    this.rules.set(`${orgId}\u0000${kind}\u0000${id}`, rules);
    if (rules.length > 0) this.orgs.add(orgId);
    return this;
  }

  hasRules(orgId: string): boolean {
    return this.orgs.has(orgId);
  }

  rulesFor(orgId: string, kind: SubjectKind, id: string): readonly BudgetRule[] {
    return this.rules.get(`${orgId}\u0000${kind}\u0000${id}`) ?? NO_RULES;
  }
}

export function costRule(period: BudgetRule['period'], cap: number, alertThresholds: number[] = []): BudgetRule {
  return { metric: 'cost', period, cap, alertThresholds };
}
