/**
 * Budget definitions in the record store. Only the admin API and the cache loader call this; the
 * request path reads the cache. Replacing an org's budgets is one transaction, so a reader sees
 * the old set or the new set, never half of each.
 */
import { AppError } from '../../core/errors.js';
import type { Db } from '../../store/db/schema.js';
import type { BudgetDefinition, Metric, SubjectKind } from './definitions.js';
import type { Period } from './periods.js';

interface Row {
  org_id: string;
  subject_kind: SubjectKind;
  subject_id: string;
  metric: Metric;
  period: Period;
  cap: string;
  alert_thresholds: number[];
}

function toDefinition(row: Row): BudgetDefinition {
  const cap = Number(row.cap);
  // The column CHECK keeps caps in range; refuse rather than round if that ever fails.
  if (!Number.isSafeInteger(cap) || cap < 0) throw new AppError('internal', { cause: new RangeError('budgets: stored cap out of range') });
  return {
    orgId: row.org_id,
    subject: { kind: row.subject_kind, id: row.subject_id },
    metric: row.metric,
    period: row.period,
    cap,
    alertThresholds: row.alert_thresholds,
  };
}

const COLUMNS = ['org_id', 'subject_kind', 'subject_id', 'metric', 'period', 'cap', 'alert_thresholds'] as const;

export async function loadAllBudgets(db: Db): Promise<BudgetDefinition[]> {
  const rows = await db.selectFrom('budgets').select(COLUMNS).execute();
  return rows.map(toDefinition);
}

export async function loadOrgBudgets(db: Db, orgId: string): Promise<BudgetDefinition[]> {
  const rows = await db
    .selectFrom('budgets')
    .select(COLUMNS)
    .where('org_id', '=', orgId)
    .orderBy('subject_kind')
    .orderBy('subject_id')
    .orderBy('metric')
    .orderBy('period')
    .execute();
  return rows.map(toDefinition);
}

/**
 * Replaces every budget of the org. Users must be members of the org and keys must be the org's,
 * checked inside the same transaction, so a budget can never be attached to another org's subject.
 */
export async function replaceOrgBudgets(db: Db, orgId: string, budgets: readonly BudgetDefinition[], actor: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const userIds = [...new Set(budgets.filter((b) => b.subject.kind === 'user').map((b) => b.subject.id))];
    const keyIds = [...new Set(budgets.filter((b) => b.subject.kind === 'key').map((b) => b.subject.id))];
    if (userIds.length > 0) {
      const found = await trx.selectFrom('memberships').select('user_id').where('org_id', '=', orgId).where('user_id', 'in', userIds).execute();
      if (found.length !== userIds.length) throw unknownSubject('user');
    }
    if (keyIds.length > 0) {
      const found = await trx.selectFrom('api_keys').select('id').where('org_id', '=', orgId).where('id', 'in', keyIds).execute();
      if (found.length !== keyIds.length) throw unknownSubject('key');
    }
    await trx.deleteFrom('budgets').where('org_id', '=', orgId).execute();
    if (budgets.length === 0) return;
    const now = new Date();
    await trx
      .insertInto('budgets')
      .values(
        budgets.map((b) => ({
          org_id: orgId,
          subject_kind: b.subject.kind,
          subject_id: b.subject.kind === 'org' ? orgId : b.subject.id,
          metric: b.metric,
          period: b.period,
          cap: b.cap,
          alert_thresholds: JSON.stringify(b.alertThresholds),
          updated_by: actor,
          updated_at: now,
        })),
      )
      .execute();
  });
}

function unknownSubject(kind: 'user' | 'key'): AppError {
  return new AppError('validation_failed', {
    message: kind === 'user' ? 'A budget names a user who is not a member of this organization.' : 'A budget names a key that does not belong to this organization.',
    details: { field: 'body.budgets' },
  });
}

/** Members and keys of an org, for showing default budgets that apply to them. */
export async function orgSubjects(db: Db, orgId: string, limit: number): Promise<{ users: string[]; keys: string[] }> {
  const users = await db.selectFrom('memberships').select('user_id').where('org_id', '=', orgId).orderBy('user_id').limit(limit).execute();
  const keys = await db
    .selectFrom('api_keys')
    .select('id')
    .where('org_id', '=', orgId)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', new Date())
    .orderBy('id')
    .limit(limit)
    .execute();
  return { users: users.map((u) => u.user_id), keys: keys.map((k) => k.id) };
}
