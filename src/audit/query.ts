/**
 * Reading the audit log: filters by org, actor, action and time, newest first, with keyset
 * pagination on seq. The cursor is opaque to callers but only ever encodes a seq, so a forged
 * cursor can move the window, never widen the filters (the org filter is applied by the caller).
 */
import { AppError } from '../core/errors.js';
import type { Db } from '../store/db/schema.js';
import { recordFromRow, viewOf, type AuditEntryView } from './rows.js';

export const MAX_AUDIT_PAGE = 500;
export const DEFAULT_AUDIT_PAGE = 50;

export interface AuditQuery {
  orgId?: string;
  actor?: string;
  /** Exact action, or a prefix ending in `.*` (e.g. `key.*`). */
  action?: string;
  /** Inclusive lower bound on `at`. */
  from?: Date;
  /** Exclusive upper bound on `at`. */
  to?: Date;
  /** 1..500; default 50. */
  limit?: number;
  cursor?: string;
}

export interface AuditPage {
  items: AuditEntryView[];
  /** Pass back as `cursor` for the next (older) page; null when there is none. */
  nextCursor: string | null;
}

const CURSOR_PREFIX = 'a1.';
const SEQ_PATTERN = /^[1-9][0-9]{0,18}$/;

export function encodeCursor(seq: string): string {
  return CURSOR_PREFIX + Buffer.from(seq, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string {
  const seq = cursor.startsWith(CURSOR_PREFIX) && cursor.length <= 64 ? Buffer.from(cursor.slice(CURSOR_PREFIX.length), 'base64url').toString('utf8') : '';
  if (!SEQ_PATTERN.test(seq) || BigInt(seq) > 9_223_372_036_854_775_807n) {
    throw new AppError('validation_failed', { message: 'The cursor is invalid.', details: { field: 'cursor' } });
  }
  return seq;
}

/** Escapes LIKE wildcards so a prefix filter matches literally. */
function likePrefix(prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
}

export async function queryAudit(db: Db, query: AuditQuery): Promise<AuditPage> {
  const limit = query.limit ?? DEFAULT_AUDIT_PAGE;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_AUDIT_PAGE) {
    throw new AppError('validation_failed', { message: `limit must be between 1 and ${MAX_AUDIT_PAGE}.`, details: { field: 'limit' } });
  }
  let select = db.selectFrom('audit_log').selectAll();
  if (query.orgId !== undefined) select = select.where('org_id', '=', query.orgId);
  if (query.actor !== undefined) select = select.where('actor', '=', query.actor);
  if (query.action !== undefined) {
    const action = query.action;
    select = action.endsWith('.*') ? select.where('action', 'like', likePrefix(action.slice(0, -1))) : select.where('action', '=', action);
  }
  if (query.from !== undefined) select = select.where('at', '>=', query.from);
  if (query.to !== undefined) select = select.where('at', '<', query.to);
  if (query.cursor !== undefined) select = select.where('seq', '<', decodeCursor(query.cursor));
  // One row more than asked tells whether another page exists without a count query.
  const rows = await select.orderBy('seq', 'desc').limit(limit + 1).execute();
  const page = rows.slice(0, limit).map((row) => viewOf(recordFromRow(row)));
  const last = page.at(-1);
  return { items: page, nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last.seq) : null };
}
