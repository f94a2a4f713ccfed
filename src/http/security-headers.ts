/** Headers every response carries. The API serves JSON only, so the CSP denies everything. */

const BASE: Readonly<Record<string, string>> = Object.freeze({
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
});

const OVER_TLS: Readonly<Record<string, string>> = Object.freeze({ ...BASE, 'strict-transport-security': 'max-age=63072000; includeSubDomains' });

/** The set for a response, built once: HSTS only when the client reached us over TLS. */
export function securityHeaders(overTls: boolean): Readonly<Record<string, string>> {
  return overTls ? OVER_TLS : BASE;
}
