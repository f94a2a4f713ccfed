/**
 * `portcullis audit verify`: the command prints `message` and exits with `exitCode`. Kept free of
 * argument parsing and process handling so the CLI engineer wires it and tests can call it.
 */
import type { Db } from '../store/db/schema.js';
import type { AuditCheckpoint, AuditVerificationKeys } from './record.js';
import { verifyAuditLog, type AuditVerifyFailure } from './verify.js';

const EXPLANATIONS: Record<AuditVerifyFailure, string> = {
  hash_mismatch: 'its contents no longer match its hash (a field was edited)',
  broken_link: 'it does not link to the record before it (that record was altered and re-hashed, or records were spliced)',
  gap: 'it is missing (a record was deleted)',
  checkpoint_signature: 'its checkpoint signature does not verify (forged, or signed with a key not given to verify)',
  checkpoint_mismatch: 'it does not match the signed checkpoint at that position (records were rewritten)',
  truncated: 'it and everything after it are missing, yet a signed checkpoint proves they existed (the log was truncated)',
};

export interface AuditVerifyCommandResult {
  exitCode: 0 | 1;
  message: string;
}

export async function runAuditVerify(options: { db: Db; keys: AuditVerificationKeys; pageSize?: number; anchor?: AuditCheckpoint }): Promise<AuditVerifyCommandResult> {
  const result = await verifyAuditLog(options.db, options.keys, {
    ...(options.pageSize === undefined ? {} : { pageSize: options.pageSize }),
    ...(options.anchor === undefined ? {} : { anchor: options.anchor }),
  });
  if (result.ok) {
    const anchored = options.anchor === undefined ? '' : ` It still holds the anchor at record ${options.anchor.seq}.`;
    const tail =
      result.unsignedTail === 0
        ? ''
        : ` The last ${result.unsignedTail} record(s) come after the newest signed checkpoint: no signature covers them yet, so their removal could not be detected.`;
    const hint = options.anchor === undefined ? ' Pass --anchor with the newest checkpoint from the gateway log to detect a tail deleted together with its checkpoints.' : '';
    return {
      exitCode: 0,
      message: `Audit log verified: ${result.records} record(s), ${result.checkpoints} signed checkpoint(s), chain intact.${anchored}${tail}${hint}`,
    };
  }
  return {
    exitCode: 1,
    message: `Audit log verification FAILED at record ${result.firstBadSeq} (${result.reason}): ${EXPLANATIONS[result.reason]}.`,
  };
}
