/**
 * Capabilities as API keys on the model gateway's `/v1` routes: a container sets
 * OPENAI_BASE_URL to the gateway and OPENAI_API_KEY to its capability. The authenticator
 * (identity/authenticate.ts) hands `pcap1.` tokens here; the principal it gets back acts for the
 * capability's user and org, with only the `models` scope, so usage is metered to them.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ErrorCode } from '../../core/errors.js';
import type { Principal } from '../../identity/principal.js';
import { CAPABILITY_PREFIX } from '../codec.js';
import type { CapabilityBroker } from './broker.js';
import { containerIdFrom, presentedProof } from './presenter.js';

export interface CapabilityAuthContext {
  ip: string;
  method: string;
  headers?: IncomingHttpHeaders;
  /** The socket peer (not the forwarded-for client): only a trusted hop may name the container. */
  peerAddress?: string;
  /** The absolute URL the client called, without query; what a proof of possession must name. */
  url?: string;
}

export type CapabilityAuthResult = { ok: true; principal: Principal } | { ok: false; code: ErrorCode };
export type CapabilityPrincipalResolver = (token: string, ctx: CapabilityAuthContext) => Promise<CapabilityAuthResult>;

export function looksLikeCapability(token: string): boolean {
  return token.startsWith(`${CAPABILITY_PREFIX}.`);
}

export const MODEL_ROUTE_PREFIX = '/v1/';

function isModelRoute(url: string): boolean {
  try {
    return new URL(url).pathname.startsWith(MODEL_ROUTE_PREFIX);
  } catch {
    return false;
  }
}

/** Role and user type are filled in by the authenticator from the identity cache (current values). */
export function capabilityPrincipalResolver(broker: CapabilityBroker): CapabilityPrincipalResolver {
  return async (token, ctx) => {
    // Capabilities are API keys for the model routes only; the admin API never sees one as a caller.
    if (ctx.url === undefined || !isModelRoute(ctx.url)) return { ok: false, code: 'route_refused' };
    const headers = ctx.headers ?? {};
    const result = await broker.authorizeModelUse(token, {
      method: ctx.method,
      containerId: containerIdFrom(headers, ctx.peerAddress, broker.config.trustedHops),
      proof: presentedProof(headers),
      url: ctx.url,
    });
    if (!result.ok) return { ok: false, code: result.code };
    const { claims } = result;
    return {
      ok: true,
      principal: {
        kind: 'capability',
        id: claims.capabilityId,
        userId: claims.userId,
        orgId: claims.orgId,
        role: null,
        userType: 'registered',
        platformAdmin: false,
        scopes: ['models'],
        capabilityId: claims.capabilityId,
        sessionId: claims.sessionId,
        ...(claims.agentId === undefined ? {} : { agentId: claims.agentId }),
        ip: ctx.ip,
      },
    };
  };
}
