/**
 * An audit anchor: a signed checkpoint kept outside the database, as the gateway publishes it in
 * its log (`auditCheckpoint`). `portcullis audit verify --anchor FILE` takes either that object or
 * the whole log line that carries it, so `grep 'audit checkpoint signed' gateway.log | tail -n 1`
 * is a valid anchor file. Its signature is checked by the verifier, not here.
 */
import { z } from 'zod';
import type { AuditCheckpoint } from './record.js';
import { issueMessage, issuePath } from '../core/issues.js';

/** An anchor is one small JSON object; anything larger is not one. */
export const MAX_ANCHOR_BYTES = 64 * 1024;

const anchorSchema = z
  .object({
    seq: z.string().regex(/^[1-9][0-9]{0,18}$/),
    hash: z.string().regex(/^[0-9a-f]{64}$/),
    at: z.iso.datetime({ offset: true }),
    keyId: z.string().min(1).max(64),
    signature: z.string().regex(/^[0-9a-f]{64}$/),
  })
  .strict();

export type AnchorParse = { ok: true; anchor: AuditCheckpoint } | { ok: false; message: string };

export function parseAuditAnchor(text: string): AnchorParse {
  if (Buffer.byteLength(text) > MAX_ANCHOR_BYTES) return { ok: false, message: `the anchor is larger than ${MAX_ANCHOR_BYTES} bytes` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.trim());
  } catch {
    return { ok: false, message: 'the anchor is not JSON (a checkpoint object, or the log line that carries one)' };
  }
  const candidate = typeof parsed === 'object' && parsed !== null && 'auditCheckpoint' in parsed ? parsed.auditCheckpoint : parsed;
  const result = anchorSchema.safeParse(candidate);
  if (!result.success) {
    const issue = result.error.issues[0];
    return { ok: false, message: `the anchor is not a signed checkpoint (${issue === undefined ? 'invalid' : `${issuePath('', issue.path, 'value')}: ${issueMessage(issue)}`})` };
  }
  return { ok: true, anchor: { ...result.data, at: new Date(result.data.at) } };
}
