/** Conversions between audit table rows and the typed records the rest of the folder uses. */
import type { Selectable } from 'kysely';
import type { AuditCheckpointsTable, AuditLogTable } from '../store/db/schema.js';
import type { AuditDetails } from './details-policy.js';
import type { AuditCheckpoint, AuditRecord } from './record.js';

export type AuditLogRow = Selectable<AuditLogTable>;
export type AuditCheckpointRow = Selectable<AuditCheckpointsTable>;

/** bigint columns arrive as strings from both drivers; accept a number defensively. */
function seqOf(value: string | number): string {
  return typeof value === 'number' ? String(value) : value;
}

function dateOf(value: Date | string): Date {
  return value instanceof Date ? value : new Date(value);
}

export function recordFromRow(row: AuditLogRow): AuditRecord {
  return {
    seq: seqOf(row.seq),
    id: row.id,
    at: dateOf(row.at),
    actor: row.actor,
    orgId: row.org_id,
    action: row.action,
    target: row.target,
    outcome: row.outcome,
    // jsonb comes back parsed; the verifier rehashes whatever is stored, so no trust is placed here.
    details: row.details as AuditDetails,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

export function rowFromRecord(record: AuditRecord) {
  return {
    seq: record.seq,
    id: record.id,
    at: record.at,
    actor: record.actor,
    org_id: record.orgId,
    action: record.action,
    target: record.target,
    outcome: record.outcome,
    details: JSON.stringify(record.details),
    prev_hash: record.prevHash,
    hash: record.hash,
  };
}

export function checkpointFromRow(row: AuditCheckpointRow): AuditCheckpoint {
  return { seq: seqOf(row.seq), hash: row.hash, at: dateOf(row.at), signature: row.signature, keyId: row.key_id };
}

export function rowFromCheckpoint(checkpoint: AuditCheckpoint) {
  return { seq: checkpoint.seq, hash: checkpoint.hash, at: checkpoint.at, signature: checkpoint.signature, key_id: checkpoint.keyId };
}

/** A public view of a record for the API: camelCase, ISO time, hashes kept so exports can be checked. */
export interface AuditEntryView {
  seq: string;
  id: string;
  at: string;
  actor: string;
  orgId: string | null;
  action: string;
  target: string | null;
  outcome: AuditRecord['outcome'];
  details: AuditDetails;
  prevHash: string;
  hash: string;
}

export function viewOf(record: AuditRecord): AuditEntryView {
  return { ...record, at: record.at.toISOString() };
}
