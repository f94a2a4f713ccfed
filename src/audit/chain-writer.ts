/**
 * Appending to the one chain. Every writer — any number of replicas on one PostgreSQL, or several
 * callers in one process — takes the same transaction-scoped advisory lock, reads the head, and
 * inserts at head+1. The lock is what keeps the chain linear; the seq primary key is the backstop
 * that turns any bypass of the lock into a failed insert rather than a fork.
 */
import { sql, type Transaction } from 'kysely';
import type { Database, Db } from '../store/db/schema.js';
import type { NormalizedEvent } from './details-policy.js';
import { GENESIS_HASH, hashRecord, signCheckpoint, type AuditCheckpoint, type AuditRecord, type AuditSigningKey } from './record.js';
import { checkpointFromRow, recordFromRow, rowFromCheckpoint, rowFromRecord } from './rows.js';

/**
 * Advisory lock class for the audit chain. The second key is derived from the current schema so
 * that separate installations (or test schemas) in one database do not serialise each other.
 */
const AUDIT_LOCK_CLASS = 0x41554454; // 'AUDT'

/** An event with its identity and time fixed at the moment it happened, not when it was written. */
export interface PreparedEvent extends NormalizedEvent {
  id: string;
  at: Date;
}

export interface ChainHead {
  seq: string;
  hash: string;
}

async function lockChain(trx: Transaction<Database>): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(${AUDIT_LOCK_CLASS}::int4, hashtext(current_schema()))`.execute(trx);
}

async function readHead(trx: Transaction<Database>): Promise<ChainHead | null> {
  const row = await trx.selectFrom('audit_log').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
  return row === undefined ? null : { seq: String(row.seq), hash: row.hash };
}

export interface AppendOptions {
  signingKey: AuditSigningKey;
  /** Write a checkpoint on every record whose seq is a multiple of this. */
  checkpointEvery: number;
  now: () => Date;
}

export interface AppendResult {
  records: AuditRecord[];
  checkpoints: AuditCheckpoint[];
}

/**
 * Appends events in order as one transaction. Events whose id is already in the log are skipped:
 * a batch retried after a commit whose acknowledgement was lost must not fail forever on the
 * unique id, nor be written twice.
 */
export async function appendEvents(db: Db, events: readonly PreparedEvent[], options: AppendOptions): Promise<AppendResult> {
  if (events.length === 0) return { records: [], checkpoints: [] };
  return db.transaction().execute(async (trx) => {
    await lockChain(trx);
    const existing = await trx.selectFrom('audit_log').select('id').where('id', 'in', events.map((event) => event.id)).execute();
    const alreadyWritten = new Set(existing.map((row) => row.id));
    const head = await readHead(trx);
    let seq = head === null ? 0n : BigInt(head.seq);
    let prevHash = head === null ? GENESIS_HASH : head.hash;
    const records: AuditRecord[] = [];
    for (const event of events) {
      if (alreadyWritten.has(event.id)) continue;
      seq += 1n;
      const unhashed = { ...event, seq: seq.toString(), prevHash };
      const record: AuditRecord = { ...unhashed, hash: hashRecord(unhashed) };
      records.push(record);
      prevHash = record.hash;
    }
    if (records.length > 0) await trx.insertInto('audit_log').values(records.map(rowFromRecord)).execute();

    // Checkpoints sit exactly on multiples of N, however the records were batched.
    const every = BigInt(options.checkpointEvery);
    const checkpoints = records
      .filter((record) => BigInt(record.seq) % every === 0n)
      .map((record) => signCheckpoint(options.signingKey, record.seq, record.hash, options.now()));
    if (checkpoints.length > 0) await trx.insertInto('audit_checkpoints').values(checkpoints.map(rowFromCheckpoint)).execute();
    return { records, checkpoints };
  });
}

/** Signs the current head, unless it is already checkpointed. Returns the head's checkpoint, or null on an empty log. */
export async function checkpointHead(db: Db, signingKey: AuditSigningKey, now: () => Date): Promise<AuditCheckpoint | null> {
  return db.transaction().execute(async (trx) => {
    await lockChain(trx);
    const head = await readHead(trx);
    if (head === null) return null;
    const existing = await trx.selectFrom('audit_checkpoints').selectAll().where('seq', '=', head.seq).executeTakeFirst();
    if (existing !== undefined) return checkpointFromRow(existing);
    const checkpoint = signCheckpoint(signingKey, head.seq, head.hash, now());
    await trx.insertInto('audit_checkpoints').values(rowFromCheckpoint(checkpoint)).execute();
    return checkpoint;
  });
}

/** Reads one record by seq (tests and the CLI use it to show the bad record). */
export async function readRecord(db: Db, seq: string): Promise<AuditRecord | null> {
  const row = await db.selectFrom('audit_log').selectAll().where('seq', '=', seq).executeTakeFirst();
  return row === undefined ? null : recordFromRow(row);
}
