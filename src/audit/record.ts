/**
 * The shape of one audit record and of one checkpoint, and the two pure functions the writer and
 * the verifier share: the record hash and the checkpoint signature. Keeping them here, side by side,
 * is what guarantees that what was written is checked the same way.
 */
import { constantTimeEqual, hmacSha256, sha256Hex } from '../core/crypto.js';
import { canonicalJson } from './canonical.js';
import type { AuditDetails } from './details-policy.js';
import type { AuditOutcome } from './sink.js';

/** prev_hash of record 1: there is nothing before it. */
export const GENESIS_HASH = '0'.repeat(64);

export interface AuditRecord {
  /** Decimal string: bigint in the database, and never rounded through a JS number. */
  seq: string;
  id: string;
  at: Date;
  actor: string;
  orgId: string | null;
  action: string;
  target: string | null;
  outcome: AuditOutcome;
  details: AuditDetails;
  prevHash: string;
  hash: string;
}

export interface AuditCheckpoint {
  seq: string;
  hash: string;
  at: Date;
  signature: string;
  keyId: string;
}

/** The secret that signs checkpoints, with the id stored beside each one so keys can rotate. */
export interface AuditSigningKey {
  id: string;
  secret: string | Uint8Array;
}

/** Verification keys by key id; keep retired keys here for as long as their checkpoints exist. */
export type AuditVerificationKeys = ReadonlyMap<string, string | Uint8Array>;

export type UnhashedRecord = Omit<AuditRecord, 'hash'>;

/**
 * sha256 over the canonical JSON of every field but the hash itself, including seq and prev_hash,
 * so that editing, reordering or relinking any record changes some hash. Field names are the
 * column names, so the definition reads the same from SQL.
 */
export function hashRecord(record: UnhashedRecord): string {
  return sha256Hex(
    canonicalJson({
      v: 1,
      seq: record.seq,
      id: record.id,
      at: record.at.toISOString(),
      actor: record.actor,
      org_id: record.orgId,
      action: record.action,
      target: record.target,
      outcome: record.outcome,
      details: record.details,
      prev_hash: record.prevHash,
    }),
  );
}

/**
 * What a checkpoint signs: `seq|hash|at`, behind a purpose label so that an HMAC made with the
 * same secret for anything else can never pass as a checkpoint.
 */
function checkpointMessage(seq: string, hash: string, at: Date): string {
  return `portcullis.audit.checkpoint.v1|${seq}|${hash}|${at.toISOString()}`;
}

export function signCheckpoint(key: AuditSigningKey, seq: string, hash: string, at: Date): AuditCheckpoint {
  const signature = hmacSha256(key.secret, checkpointMessage(seq, hash, at)).toString('hex');
  return { seq, hash, at, signature, keyId: key.id };
}

export function checkpointSignatureValid(keys: AuditVerificationKeys, checkpoint: AuditCheckpoint): boolean {
  const secret = keys.get(checkpoint.keyId);
  if (secret === undefined) return false;
  const expected = hmacSha256(secret, checkpointMessage(checkpoint.seq, checkpoint.hash, checkpoint.at)).toString('hex');
  return constantTimeEqual(expected, checkpoint.signature);
}

/** Minimum signing secret length: an HMAC key shorter than its output weakens it. */
export const MIN_AUDIT_SECRET_BYTES = 32;

export function assertSigningKey(key: AuditSigningKey): void {
  const length = typeof key.secret === 'string' ? Buffer.byteLength(key.secret, 'utf8') : key.secret.byteLength;
  if (length < MIN_AUDIT_SECRET_BYTES) {
    throw new Error(`The audit signing secret "${key.id}" is too short: use at least ${MIN_AUDIT_SECRET_BYTES} random bytes.`);
  }
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(key.id)) {
    throw new Error('The audit signing key id must be 1-64 characters of letters, digits, _ . : -');
  }
}
