/** Test helpers for code that audits: a fixed signing key and its verification map. */
import type { AuditSigningKey, AuditVerificationKeys } from './record.js';

export const TEST_AUDIT_KEY: AuditSigningKey = { id: 'audit-test-1', secret: 'test-audit-signing-secret-0123456789abcdef' };

export function testAuditKeys(...extra: AuditSigningKey[]): AuditVerificationKeys {
  return new Map([TEST_AUDIT_KEY, ...extra].map((key) => [key.id, key.secret]));
}
