/**
 * OIDC issuer configuration. Validated once at start: a symmetric algorithm or `none` in the
 * allow-list is a startup error, because a symmetric key would have to be shared with the IdP and
 * the classic key-confusion attack (HS256 keyed with the issuer's public key) starts there.
 */
import { z } from 'zod';
import { ConfigError } from '../../config/errors.js';
import type { OrgRole } from '../../store/db/index.js';
import { issueMessage, issuePath } from '../../core/issues.js';

export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export type AsymmetricAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

const claimName = z.string().min(1).max(100);

export const oidcIssuerSchema = z
  .object({
    /** Short name used in principal ids: `oidc:{name}:{sub}`. */
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'use 1–32 lowercase letters, digits, _ or -'),
    issuer: z.string().url().max(500),
    audience: z.string().min(1).max(500),
    jwksUrl: z
      .string()
      .url()
      .max(1000)
      .refine((value) => {
        const url = new URL(value);
        return url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname));
      }, 'the JWKS URL must use https (plain http only on a loopback address)'),
    algorithms: z
      .array(z.string())
      .min(1)
      .refine((algs) => algs.every((alg) => (ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg)), {
        message: `only asymmetric algorithms are allowed (${ASYMMETRIC_ALGORITHMS.join(', ')}); HS* and none are refused`,
      })
      .transform((algs) => algs as AsymmetricAlgorithm[]),
    claims: z
      .object({
        user: claimName.default('sub'),
        org: claimName.optional(),
        roles: claimName.optional(),
        userType: claimName.optional(),
      })
      .strict()
      .prefault({}),
    /**
     * The highest org role a token may carry. Roles in a token are the IdP's word; this caps what a
     * misconfigured or compromised IdP can grant. Default 'member'.
     */
    maxRole: z.enum(['owner', 'admin', 'member', 'viewer']).default('member'),
    clockToleranceSec: z.number().int().min(0).max(300).default(30),
  })
  .strict();

export type OidcIssuerConfig = z.output<typeof oidcIssuerSchema>;
export type OidcIssuerInput = z.input<typeof oidcIssuerSchema>;

/** Validates every issuer; throws a ConfigError naming `{configKey}[i].field` and the fix. */
export function parseOidcIssuers(input: unknown, configKey = 'oidc.issuers'): OidcIssuerConfig[] {
  const result = z.array(oidcIssuerSchema).max(32).safeParse(input);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => ({
        key: issuePath(configKey, issue.path),
        problem: issueMessage(issue),
        fix: 'correct this value in the oidc section of the configuration',
      })),
    );
  }
  const seen = new Set<string>();
  for (const issuer of result.data) {
    if (seen.has(issuer.issuer)) throw ConfigError.single(configKey, `the issuer ${issuer.issuer} is configured twice`, 'keep one entry per issuer');
    seen.add(issuer.issuer);
  }
  return result.data;
}

export const ROLE_RANK: Record<OrgRole, number> = { viewer: 1, member: 2, admin: 3, owner: 4 };
