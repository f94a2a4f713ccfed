/**
 * Server side of runtime credentials: mint a fresh key for one agent runtime instance. The instance
 * row keeps the key id and expiry only (the token goes back to the deployer, once).
 *
 * The previous key of the instance is NOT revoked here. The deployer may time out and fall back to
 * it while this mint is still committing; revoking it would then kill the very key the fallback
 * relies on. It stays valid until its own expiry, or until someone revokes it explicitly.
 *
 * Instance ids are chosen by the platform, so the row id is namespaced by org: the same instance
 * name in two orgs are two rows, and one org can neither see nor collide with the other's.
 */
import { AppError } from '../../core/errors.js';
import { withTimeout } from '../../core/timeout.js';
import type { Principal } from '../principal.js';
import { actorDetails, actorOf, OrgGate } from './access.js';
import type { KeyService } from './keys.js';
import { grantableScopes } from './permissions.js';
import type { TenancyDeps } from './ports.js';
import type { KeyView } from './views.js';

export const DEFAULT_RUNTIME_SCOPES = ['models', 'tasks'];
export const DEFAULT_RUNTIME_MINT_TIMEOUT_MS = 5_000;

export interface MintRuntimeInput {
  scopes?: string[];
  ttlSeconds?: number;
}

export function runtimeRowId(orgId: string, instanceId: string): string {
  return `${orgId}/${instanceId}`;
}

export class RuntimeKeyService {
  private readonly gate: OrgGate;

  constructor(
    private readonly deps: TenancyDeps,
    private readonly keys: KeyService,
    private readonly timeoutMs = DEFAULT_RUNTIME_MINT_TIMEOUT_MS,
  ) {
    this.gate = new OrgGate(deps.db, deps.audit);
  }

  async mint(actor: Principal, orgId: string, instanceId: string, input: MintRuntimeInput): Promise<{ key: KeyView; token: string; instanceId: string }> {
    const inOrg = await this.gate.member(actor, orgId);
    const rowId = runtimeRowId(orgId, instanceId);
    const existing = await this.deps.db.selectFrom('runtime_instances').select('user_id').where('id', '=', rowId).executeTakeFirst();
    // The key is held by whoever owns the instance; the first mint makes the caller its owner.
    const holder = existing?.user_id ?? inOrg.userId;
    if (holder === null) throw new AppError('forbidden');
    await this.gate.require(actor, orgId, holder === inOrg.userId ? 'keys.create_own' : 'keys.create_for_others', rowId);
    const scopes = grantableScopes(inOrg, input.scopes ?? DEFAULT_RUNTIME_SCOPES);
    if (!scopes.ok) return this.gate.deny(inOrg, orgId, 'runtime.credential_mint', rowId);
    const work = this.deps.db.transaction().execute(async (trx) => {
      // The row lock makes concurrent mints for one instance take turns instead of racing the upsert.
      await trx
        .insertInto('runtime_instances')
        .values({ id: rowId, org_id: orgId, user_id: holder, key_id: null, key_expires_at: null, updated_at: new Date(this.deps.clock.now()) })
        .onConflict((oc) => oc.column('id').doNothing())
        .execute();
      const row = await trx.selectFrom('runtime_instances').select(['org_id', 'user_id']).where('id', '=', rowId).forUpdate().executeTakeFirstOrThrow();
      if (row.org_id !== orgId || row.user_id !== holder) throw new AppError('conflict', { message: 'The runtime instance changed owner; retry.' });
      const created = await this.keys.insertAndSign(trx, {
        orgId,
        holder,
        createdBy: actorOf(actor),
        name: `runtime ${instanceId}`.slice(0, 200),
        scopes: scopes.scopes,
        ttlSeconds: input.ttlSeconds,
      });
      await trx
        .updateTable('runtime_instances')
        .set({ key_id: created.key.id, key_expires_at: new Date(created.key.expiresAt), updated_at: new Date(this.deps.clock.now()) })
        .where('id', '=', rowId)
        .execute();
      return created;
    });
    // Answers 503 instead of hanging the deployer; late work still completes harmlessly.
    const created = await withTimeout(work, this.timeoutMs, () => new AppError('dependency_unavailable', { message: `Minting the runtime key took longer than ${this.timeoutMs} ms.` }));
    await this.deps.audit.record({
      actor: actorOf(actor),
      orgId,
      action: 'runtime.credential_mint',
      target: rowId,
      outcome: 'success',
      details: { ...actorDetails(actor), mintedKeyId: created.key.id, holder, expiresAt: created.key.expiresAt },
    });
    return { ...created, instanceId };
  }
}
