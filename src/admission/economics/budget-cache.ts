/**
 * The in-memory copy of every budget definition, so the request path never reads the database.
 *
 * Loaded whole at start. A change made through the admin API reloads that org at once on the
 * replica that made it and is announced on the `budgets:v1` channel so every other replica reloads
 * it too. Pub/sub is at most once, so a full reload also runs every `refreshMs`: a missed message
 * costs at most that long. Loads are numbered when they start and a result is applied to an org
 * only if no later-started load has been applied to it, so a slow, stale load never wins.
 */
import type { Logger } from '../../core/logger.js';
import type { Db } from '../../store/db/schema.js';
import type { HotState } from '../../store/state/port.js';
import { loadAllBudgets, loadOrgBudgets } from './budget-records.js';
import { NO_RULES, type BudgetDefinition, type BudgetRule, type SubjectKind } from './definitions.js';

export const BUDGETS_CHANNEL = 'budgets:v1';
const ORG_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Where definitions come from; the record store unless a test injects another source. */
export interface BudgetLoader {
  all(): Promise<BudgetDefinition[]>;
  org(orgId: string): Promise<BudgetDefinition[]>;
}

export interface BudgetCacheOptions {
  db: Db;
  loader?: BudgetLoader;
  pubsub: Pick<HotState, 'publish' | 'subscribe'>;
  logger?: Logger;
  /** Full reload interval; 0 disables it (tests). Default 60 s. */
  refreshMs?: number;
}

/**
 * One org's rules: subject kind → subject id → rules. Nested maps rather than one map keyed by
 * `${kind}:${id}`: every budgeted request looks up three subjects, and no key string is built.
 */
type OrgRules = Map<SubjectKind, Map<string, BudgetRule[]>>;

/** An org without any budget row: kept as an entry all the same (see `apply`). */
const noOrgRules = (): OrgRules => new Map();

interface OrgEntry {
  /** Load number that produced this entry. */
  loadNo: number;
  rules: OrgRules;
  /** Whether any subject has a rule (most orgs have none). */
  any: boolean;
}

function group(definitions: readonly BudgetDefinition[]): Map<string, OrgRules> {
  const byOrg = new Map<string, OrgRules>();
  for (const d of definitions) {
    let org = byOrg.get(d.orgId);
    if (org === undefined) {
      org = new Map();
      byOrg.set(d.orgId, org);
    }
    let subjects = org.get(d.subject.kind);
    if (subjects === undefined) {
      subjects = new Map();
      org.set(d.subject.kind, subjects);
    }
    const list = subjects.get(d.subject.id) ?? [];
    list.push({ metric: d.metric, period: d.period, cap: d.cap, alertThresholds: d.alertThresholds });
    subjects.set(d.subject.id, list);
  }
  return byOrg;
}

export class BudgetCache {
  private readonly orgs = new Map<string, OrgEntry>();
  private nextLoad = 1;
  private loaded = false;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => Promise<void>) | undefined;

  private readonly loader: BudgetLoader;

  constructor(private readonly options: BudgetCacheOptions) {
    this.loader = options.loader ?? { all: () => loadAllBudgets(options.db), org: (orgId) => loadOrgBudgets(options.db, orgId) };
  }

  get ready(): boolean {
    return this.loaded;
  }

  async start(): Promise<void> {
    this.unsubscribe = await this.options.pubsub.subscribe(BUDGETS_CHANNEL, (message) => {
      if (!ORG_ID.test(message)) return;
      this.reloadOrg(message).catch((error: unknown) => this.options.logger?.warn({ err: error, orgId: message }, 'budget reload failed'));
    });
    await this.reloadAll();
    const refreshMs = this.options.refreshMs ?? 60_000;
    if (refreshMs > 0) {
      this.timer = setInterval(() => {
        this.reloadAll().catch((error: unknown) => this.options.logger?.warn({ err: error }, 'budget refresh failed'));
      }, refreshMs);
      this.timer.unref();
    }
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    const unsubscribe = this.unsubscribe;
    this.unsubscribe = undefined;
    if (unsubscribe !== undefined) await unsubscribe();
  }

  /** Explicit budgets of one subject in one org (empty when it has none). */
  rulesFor(orgId: string, kind: SubjectKind, id: string): readonly BudgetRule[] {
    return this.orgs.get(orgId)?.rules.get(kind)?.get(id) ?? NO_RULES;
  }

  /** Whether any subject of the org has a budget (most orgs have none). */
  hasRules(orgId: string): boolean {
    return this.orgs.get(orgId)?.any ?? false;
  }

  async reloadAll(): Promise<void> {
    const loadNo = this.nextLoad++;
    const byOrg = group(await this.loader.all());
    for (const [orgId, rules] of byOrg) this.apply(orgId, loadNo, rules);
    // Orgs that no longer have any budget row.
    for (const orgId of [...this.orgs.keys()]) if (!byOrg.has(orgId)) this.apply(orgId, loadNo, noOrgRules());
    this.loaded = true;
  }

  async reloadOrg(orgId: string): Promise<void> {
    const loadNo = this.nextLoad++;
    const rules = group(await this.loader.org(orgId)).get(orgId) ?? noOrgRules();
    this.apply(orgId, loadNo, rules);
  }

  /** After a change is committed: reload here at once, then tell the other replicas. */
  async changed(orgId: string): Promise<void> {
    await this.reloadOrg(orgId);
    try {
      await this.options.pubsub.publish(BUDGETS_CHANNEL, orgId);
    } catch (error) {
      // The change is durable; other replicas pick it up at their next full refresh.
      this.options.logger?.warn({ err: error, orgId }, 'budget change announcement failed');
    }
  }

  private apply(orgId: string, loadNo: number, rules: OrgRules): void {
    const current = this.orgs.get(orgId);
    if (current !== undefined && current.loadNo > loadNo) return;
    // Kept even when empty: its load number is what stops an older load from bringing rules back.
    this.orgs.set(orgId, { loadNo, rules, any: rules.size > 0 });
  }
}
