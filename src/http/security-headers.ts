/** Headers every response carries. The API serves JSON only, so the CSP denies everything. */
import type { FastifyReply } from 'fastify';

export function applySecurityHeaders(reply: FastifyReply, overTls: boolean): void {
  reply.header('x-content-type-options', 'nosniff');
  reply.header('x-frame-options', 'DENY');
  reply.header('referrer-policy', 'no-referrer');
  reply.header('cross-origin-opener-policy', 'same-origin');
  reply.header('cross-origin-resource-policy', 'same-origin');
  reply.header('content-security-policy', "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
  if (overTls) reply.header('strict-transport-security', 'max-age=63072000; includeSubDomains');
}
