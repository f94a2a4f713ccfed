/** The audit folder's public surface. */
export type { AuditEventInput, AuditOutcome, AuditSink } from './sink.js';
export { MemoryAuditSink } from './sink.js';
export { AuditLog, type AuditLogOptions } from './audit-log.js';
export {
  GENESIS_HASH,
  hashRecord,
  signCheckpoint,
  type AuditRecord,
  type AuditCheckpoint,
  type AuditSigningKey,
  type AuditVerificationKeys,
} from './record.js';
export { verifyAuditLog, type AuditVerifyResult, type AuditVerifyFailure, type VerifyOptions } from './verify.js';
export { queryAudit, MAX_AUDIT_PAGE, type AuditQuery, type AuditPage } from './query.js';
export type { AuditEntryView } from './rows.js';
export { registerAuditRoutes, type AuditRouteDeps } from './routes.js';
export { runAuditVerify, type AuditVerifyCommandResult } from './cli.js';
export { parseAuditAnchor, MAX_ANCHOR_BYTES, type AnchorParse } from './anchor.js';
export { canonicalJson } from './canonical.js';
export { isSecretLookingName, isSecretLookingValue } from './details-policy.js';
