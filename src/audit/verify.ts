/**
 * Verifies the whole audit log in one pass, in seq order, holding one page of records and one page
 * of checkpoints at a time. The first problem found is the answer, so `firstBadSeq` always names
 * the earliest record at which the stored log stops being the log that was written:
 *
 * - gap              a seq is missing (a record was deleted); firstBadSeq is the missing seq
 * - hash_mismatch    a record's fields no longer produce its hash (a field was edited)
 * - broken_link      a record's prev_hash is not the previous record's hash (the previous record
 *                    was edited and re-hashed, or records were spliced)
 * - checkpoint_signature  a checkpoint's HMAC does not verify (forged, or signed by an unknown key)
 * - checkpoint_mismatch   a valid checkpoint names a hash the record at its seq does not have
 * - truncated        a valid checkpoint lies beyond the last record (the tail was cut off)
 *
 * Checkpoints live in the same database as the records, so someone who can delete the tail can
 * delete its checkpoints too. The gateway therefore also publishes every checkpoint it signs to its
 * log (audit-log.ts); handing the newest one kept outside the database to the verifier as
 * `anchor` proves the log still reaches it. Records after the last signed checkpoint are not yet
 * covered by any signature, and the result says how many there are (`unsignedTail`).
 */
import type { Db } from '../store/db/schema.js';
import { GENESIS_HASH, checkpointSignatureValid, hashRecord, type AuditCheckpoint, type AuditRecord, type AuditVerificationKeys } from './record.js';
import { checkpointFromRow, recordFromRow } from './rows.js';
import { constantTimeEqual } from '../core/crypto.js';

export type AuditVerifyFailure = 'hash_mismatch' | 'broken_link' | 'gap' | 'checkpoint_signature' | 'checkpoint_mismatch' | 'truncated';

export type AuditVerifyResult =
  | { ok: true; records: number; checkpoints: number; /** Records after the last signed checkpoint. */ unsignedTail: number; anchored: boolean }
  | { ok: false; firstBadSeq: string; reason: AuditVerifyFailure };

export interface VerifyOptions {
  /** Rows per query (default 500): bounds memory whatever the size of the log. */
  pageSize?: number;
  /** A checkpoint kept outside the database (from the gateway's log); the log must still hold it. */
  anchor?: AuditCheckpoint;
}

async function* recordPages(db: Db, pageSize: number): AsyncGenerator<AuditRecord, void> {
  let after = '0';
  for (;;) {
    const rows = await db.selectFrom('audit_log').selectAll().where('seq', '>', after).orderBy('seq', 'asc').limit(pageSize).execute();
    for (const row of rows) yield recordFromRow(row);
    const last = rows.at(-1);
    if (last === undefined || rows.length < pageSize) return;
    after = String(last.seq);
  }
}

async function* checkpointPages(db: Db, pageSize: number): AsyncGenerator<AuditCheckpoint, void> {
  let after = '0';
  for (;;) {
    const rows = await db.selectFrom('audit_checkpoints').selectAll().where('seq', '>', after).orderBy('seq', 'asc').limit(pageSize).execute();
    for (const row of rows) yield checkpointFromRow(row);
    const last = rows.at(-1);
    if (last === undefined || rows.length < pageSize) return;
    after = String(last.seq);
  }
}

/** Stored details edited into something with no canonical form are a mismatch, not a crash. */
function hashOrNull(record: AuditRecord): string | null {
  try {
    return hashRecord(record);
  } catch {
    return null;
  }
}

function fail(seq: bigint | string, reason: AuditVerifyFailure): AuditVerifyResult {
  return { ok: false, firstBadSeq: String(seq), reason };
}

export async function verifyAuditLog(db: Db, keys: AuditVerificationKeys, options: VerifyOptions = {}): Promise<AuditVerifyResult> {
  const pageSize = options.pageSize ?? 500;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1) throw new Error('pageSize must be a positive integer');
  const checkpoints = checkpointPages(db, pageSize);
  const takeCheckpoint = async (): Promise<AuditCheckpoint | null> => {
    const step = await checkpoints.next();
    return step.done === true ? null : step.value;
  };
  const { anchor } = options;
  // A forged anchor proves nothing: it is refused before anything is read.
  if (anchor !== undefined && !checkpointSignatureValid(keys, anchor)) return fail(anchor.seq, 'checkpoint_signature');
  const anchorSeq = anchor === undefined ? null : BigInt(anchor.seq);
  let nextCheckpoint = await takeCheckpoint();
  let checkpointCount = 0;
  let lastSignedSeq = 0n;
  let expectedSeq = 1n;
  let prevHash = GENESIS_HASH;

  for await (const record of recordPages(db, pageSize)) {
    const seq = BigInt(record.seq);
    if (seq !== expectedSeq) return fail(expectedSeq, 'gap');
    // A checkpoint between the previous record and this one can only sit on a missing seq, which the
    // gap check has already reported, so checkpoints are matched exactly here.
    const computed = hashOrNull(record);
    if (computed === null || !constantTimeEqual(computed, record.hash)) return fail(seq, 'hash_mismatch');
    if (record.prevHash !== prevHash) return fail(seq, 'broken_link');
    while (nextCheckpoint !== null && BigInt(nextCheckpoint.seq) <= seq) {
      if (!checkpointSignatureValid(keys, nextCheckpoint)) return fail(nextCheckpoint.seq, 'checkpoint_signature');
      if (BigInt(nextCheckpoint.seq) !== seq || nextCheckpoint.hash !== record.hash) return fail(nextCheckpoint.seq, 'checkpoint_mismatch');
      checkpointCount += 1;
      lastSignedSeq = seq;
      nextCheckpoint = await takeCheckpoint();
    }
    if (anchorSeq === seq && anchor?.hash !== record.hash) return fail(seq, 'checkpoint_mismatch');
    prevHash = record.hash;
    expectedSeq = seq + 1n;
  }

  if (nextCheckpoint !== null) {
    // Checkpoints past the end: a forged one is reported as such; a genuine one proves truncation.
    if (!checkpointSignatureValid(keys, nextCheckpoint)) return fail(nextCheckpoint.seq, 'checkpoint_signature');
    return fail(expectedSeq, 'truncated');
  }
  // The anchor proves records up to its seq existed; a log that ends before it was cut off there.
  if (anchorSeq !== null && anchorSeq >= expectedSeq) return fail(expectedSeq, 'truncated');
  if (anchorSeq !== null && anchorSeq > lastSignedSeq) lastSignedSeq = anchorSeq;
  const records = expectedSeq - 1n;
  return { ok: true, records: Number(records), checkpoints: checkpointCount, unsignedTail: Number(records - lastSignedSeq), anchored: anchor !== undefined };
}
