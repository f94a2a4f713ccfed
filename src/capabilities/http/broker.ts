/**
 * The broker's decisions behind the HTTP routes: issue, revoke, redeem, each audited. Routes and
 * the egress proxy only translate HTTP to these calls and back.
 *
 * Audit never carries a token, a proof or a credential: events name the capability id, the grant,
 * the route class and the refusal reason. Successful redemptions are sampled (one in
 * `redeemSampleEvery`, default every one); every refusal is recorded.
 */
import { z } from 'zod';
import type { AuditSink } from '../../audit/sink.js';
import type { Clock } from '../../core/clock.js';
import { AppError } from '../../core/errors.js';
import { newId } from '../../core/ids.js';
import { actorDetails, actorOf, OrgGate } from '../../identity/tenancy/access.js';
import type { Principal } from '../../identity/principal.js';
import type { Db } from '../../store/db/schema.js';
import type { ReplayStore } from '../pop.js';
import { bindingSchema, capabilityClaimsSchema, grantSchema, isAllowedTargetOrigin, type CapabilityClaims, type CapabilityGrant, type RouteClass } from '../claims.js';
import { sealCapability } from '../codec.js';
import { holderRefusal, openPresented, redeemCapability, refuseRedemption, type PresentedEvidence, type RedeemDeps, type RedeemRequest, type RedeemResult, type RedemptionRefused } from '../redeem.js';
import type { CapabilityRuntimeConfig } from './config.js';
import type { CapabilityRevocations, RevocationKind } from './revocations.js';
import { issueMessage, issuePath } from '../../core/issues.js';

const boundedId = z.string().min(1).max(128).regex(/^[A-Za-z0-9._:@-]+$/);

export const issueBodySchema = z
  .object({
    userId: boundedId,
    sessionId: boundedId,
    agentId: boundedId.optional(),
    binding: bindingSchema,
    grants: z.array(grantSchema).min(1).max(32),
    /** Lifetime; defaults to (and may not exceed) the configured maximum. */
    ttlSeconds: z.number().int().min(1).max(4 * 60 * 60).optional(),
  })
  .strict();
export type IssueInput = z.infer<typeof issueBodySchema>;

export const revokeBodySchema = z.union([
  z.object({ capabilityId: boundedId }).strict(),
  z.object({ sessionId: boundedId }).strict(),
  z.object({ containerId: boundedId }).strict(),
]);
export type RevokeInput = z.infer<typeof revokeBodySchema>;

export interface IssuedCapability {
  token: string;
  capabilityId: string;
  expiresAt: string;
}

export interface BrokerDeps {
  db: Db;
  audit: AuditSink;
  clock: Clock;
  config: CapabilityRuntimeConfig;
  revocations: Pick<CapabilityRevocations, 'isRevoked' | 'revoke'>;
  replay: ReplayStore;
  /** Record one in N successful redemptions (refusals are always recorded). */
  redeemSampleEvery?: number;
}

/** Grants whose holder is using models: through the gateway's own `/v1` or a provider. */
const MODEL_ROUTE_CLASSES: ReadonlySet<RouteClass> = new Set<RouteClass>(['org_models', 'provider_model']);

export type ModelUseResult = { ok: true; claims: CapabilityClaims; grant: CapabilityGrant } | RedemptionRefused;

export interface RedeemAuditContext {
  /** egress, model or service (the redeem route). */
  via: 'egress' | 'model' | 'service';
  /** Who presented it when known (the service principal of the redeem route). */
  actor?: Principal;
}

export class CapabilityBroker {
  private readonly gate: OrgGate;
  private readonly redeemDeps: RedeemDeps;
  private successes = 0;

  constructor(private readonly deps: BrokerDeps) {
    this.gate = new OrgGate(deps.db, deps.audit);
    this.redeemDeps = { keyring: deps.config.keyring, isRevoked: (claims) => deps.revocations.isRevoked(claims), replay: deps.replay };
  }

  get config(): CapabilityRuntimeConfig {
    return this.deps.config;
  }

  async issue(principal: Principal, orgId: string, input: IssueInput): Promise<IssuedCapability> {
    const actor = await this.gate.require(principal, orgId, 'capabilities.issue');
    // The user must belong to this org; another org's user is indistinguishable from none.
    const member = await this.deps.db
      .selectFrom('memberships')
      .select('user_id')
      .where('org_id', '=', orgId)
      .where('user_id', '=', input.userId)
      .executeTakeFirst();
    if (member === undefined) throw new AppError('not_found', { message: 'No such user in this organization.' });
    for (const [index, grant] of input.grants.entries()) this.checkGrant(grant, index);

    const issuedAt = this.deps.clock.now();
    const lifetimeMs = Math.min(this.deps.config.maxLifetimeMs, (input.ttlSeconds ?? Number.MAX_SAFE_INTEGER / 1000) * 1000);
    const claims: CapabilityClaims = {
      purpose: 'capability',
      capabilityId: newId('cap'),
      userId: input.userId,
      orgId,
      sessionId: input.sessionId,
      ...(input.agentId === undefined ? {} : { agentId: input.agentId }),
      binding: input.binding,
      grants: input.grants,
      issuedAt,
      expiresAt: issuedAt + lifetimeMs,
    };
    const parsed = capabilityClaimsSchema.safeParse(claims);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new AppError('validation_failed', { message: `Invalid body: ${issue === undefined ? 'invalid capability' : `${issuePath('', issue.path, 'capability')}: ${issueMessage(issue)}`}` });
    }
    const token = sealCapability(parsed.data, this.deps.config.keyring);
    await this.deps.audit.record({
      actor: actorOf(actor),
      orgId,
      action: 'capability.issue',
      target: claims.capabilityId,
      outcome: 'success',
      details: {
        ...actorDetails(actor),
        userId: claims.userId,
        sessionId: claims.sessionId,
        binding: claims.binding.type,
        grants: claims.grants.map((grant) => `${grant.name}:${grant.routeClass}`).join(','),
        expiresAt: new Date(claims.expiresAt).toISOString(),
      },
    });
    return { token, capabilityId: claims.capabilityId, expiresAt: new Date(claims.expiresAt).toISOString() };
  }

  private checkGrant(grant: CapabilityGrant, index: number): void {
    const field = `body.grants.${index}`;
    if (!isAllowedTargetOrigin(grant.origin, { httpHosts: this.deps.config.devHttpHosts })) {
      throw new AppError('validation_failed', {
        message: `Invalid ${field}.origin: targets must be https (plain http only for configured development hosts)`,
        details: { field: `${field}.origin` },
      });
    }
    if (!this.deps.config.credentials.has(grant.credential.ref)) {
      throw new AppError('validation_failed', { message: `Invalid ${field}.credential.ref: no such credential is configured`, details: { field: `${field}.credential.ref` } });
    }
  }

  async revoke(principal: Principal, orgId: string, input: RevokeInput): Promise<{ revoked: true; kind: RevocationKind; id: string }> {
    // Revoking is part of issuing: whoever may hand capabilities out may take them back.
    const actor = await this.gate.require(principal, orgId, 'capabilities.issue');
    const [kind, id]: [RevocationKind, string] =
      'capabilityId' in input ? ['capability', input.capabilityId] : 'sessionId' in input ? ['session', input.sessionId] : ['container', input.containerId];
    try {
      await this.deps.revocations.revoke({ kind, orgId, id });
    } catch (error) {
      await this.deps.audit.record({ actor: actorOf(actor), orgId, action: 'capability.revoke', target: id, outcome: 'failure', details: { ...actorDetails(actor), kind } });
      throw error instanceof AppError ? error : new AppError('dependency_unavailable', { message: 'The revocation could not be propagated; retry it.' });
    }
    await this.deps.audit.record({ actor: actorOf(actor), orgId, action: 'capability.revoke', target: id, outcome: 'success', details: { ...actorDetails(actor), kind } });
    return { revoked: true, kind, id };
  }

  /** The shared redemption decision, audited: every refusal, a sample of successes. */
  async redeem(
    token: string,
    request: Omit<RedeemRequest, 'now'>,
    context: RedeemAuditContext,
    /** An extra condition on the opened claims; failing it is reported as `invalid`. */
    accept?: (claims: CapabilityClaims) => boolean,
  ): Promise<RedeemResult> {
    let result = await redeemCapability(token, { ...request, now: this.deps.clock.now() }, this.redeemDeps);
    if (result.ok && accept !== undefined && !accept(result.claims)) {
      result = refuseRedemption('invalid');
    }
    await this.auditRedeem(result, request, context);
    return result;
  }

  async auditRedeem(result: RedeemResult, request: Pick<RedeemRequest, 'method' | 'grantName'>, context: RedeemAuditContext): Promise<void> {
    const presenter = context.actor === undefined ? {} : { ...actorDetails(context.actor), presenter: actorOf(context.actor) };
    if (result.ok) {
      this.successes += 1;
      if ((this.successes - 1) % (this.deps.redeemSampleEvery ?? 1) !== 0) return;
      await this.deps.audit.record({
        actor: result.claims.userId,
        orgId: result.claims.orgId,
        action: 'capability.redeem',
        target: result.claims.capabilityId,
        outcome: 'success',
        details: { ...presenter, channel: context.via, method: request.method, grant: result.grant.name, routeClass: result.routeClass, sessionId: result.claims.sessionId },
      });
      return;
    }
    // The claims of a refused token are not trusted (or not known): the event names no org.
    await this.deps.audit.record({
      actor: context.actor === undefined ? 'anon:capability' : actorOf(context.actor),
      orgId: context.actor?.orgId ?? null,
      action: 'capability.redeem',
      target: null,
      outcome: 'denied',
      details: { ...presenter, channel: context.via, method: request.method.slice(0, 16), grant: request.grantName ?? null, reason: result.reason },
    });
  }

  /**
   * The model gateway's question: may this capability act as an API key on the `/v1` routes? It
   * must open with the presented evidence, hold a model grant, not be revoked, and, when key-bound,
   * come with a fresh proof over this request (`url` is the gateway URL the client called).
   */
  async authorizeModelUse(token: string, evidence: PresentedEvidence & { method: string; url?: string | undefined }): Promise<ModelUseResult> {
    const result = await this.decideModelUse(token, evidence);
    await this.auditRedeem(
      result.ok ? { ok: true, claims: result.claims, grant: result.grant, routeClass: result.grant.routeClass, forwardPath: '', forwardQuery: '' } : result,
      { method: evidence.method },
      { via: 'model' },
    );
    return result;
  }

  private async decideModelUse(token: string, evidence: PresentedEvidence & { method: string; url?: string | undefined }): Promise<ModelUseResult> {
    const now = this.deps.clock.now();
    const opened = await openPresented(token, evidence, this.deps.config.keyring, now);
    if (!opened.ok) return refuseRedemption(opened.reason);
    const { claims } = opened;
    const grant = claims.grants.find((candidate) => MODEL_ROUTE_CLASSES.has(candidate.routeClass));
    if (grant === undefined) return refuseRedemption('route_not_granted');
    const refusal = await holderRefusal(token, claims, { method: evidence.method, url: evidence.url, proof: evidence.proof, now }, this.redeemDeps);
    return refusal === null ? { ok: true, claims, grant } : refuseRedemption(refusal);
  }

  /** A redeemed capability whose upstream address the outbound guard refused. */
  async auditEgressRefusal(claims: CapabilityClaims, grantName: string, reason: string): Promise<void> {
    await this.deps.audit.record({
      actor: claims.userId,
      orgId: claims.orgId,
      action: 'capability.redeem',
      target: claims.capabilityId,
      outcome: 'denied',
      details: { channel: 'egress', grant: grantName, reason: `egress_${reason}` },
    });
  }

  /** The credential value to inject for a grant, e.g. `Bearer <secret>`; null if unconfigured. */
  credentialValue(grant: CapabilityGrant): string | null {
    const secret = this.deps.config.credentials.get(grant.credential.ref);
    if (secret === undefined) return null;
    const value = secret.bytes().toString('utf8');
    return grant.credential.scheme === undefined ? value : `${grant.credential.scheme} ${value}`;
  }
}
