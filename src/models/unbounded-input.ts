/**
 * Whether a call's input tokens are bounded by its size. They usually are (a token is at least one
 * byte of the request), but not for content the provider fetches or expands itself: an image given
 * by URL or by file id costs hundreds of tokens for a few dozen bytes, and a document (a PDF, inline
 * or referenced) can cost thousands of tokens a page. Such a call's input is bounded only by the
 * model's context window (`maxInputTokens`), and the reservation must say so, or the provider could
 * bill past what the budgets reserved.
 *
 * The shapes are the OpenAI chat and Responses content parts and the Anthropic content blocks. The
 * walk stops at the first such part and looks at no more than a bounded number of parts, past which
 * the call is treated as unbounded too.
 */
import type { Operation } from './providers/index.js';
import { isRecord } from './providers/types.js';

/** Parts looked at in one call; a call with more is treated as unbounded rather than walked further. */
const MAX_PARTS = 4096;

function isReference(url: unknown): boolean {
  // An inline image (data: URL) is its own bytes; anything else the provider fetches.
  return typeof url !== 'string' || !url.startsWith('data:');
}

/** Whether one content part is expanded by the provider beyond its own bytes. */
function expands(part: Record<string, unknown>): boolean {
  switch (part.type) {
    // OpenAI chat: { type: 'image_url', image_url: { url } }, { type: 'file', file: { file_id | file_data } }.
    case 'image_url':
      return !isRecord(part.image_url) || isReference(part.image_url.url);
    case 'file':
      return true;
    // OpenAI Responses: { type: 'input_image', image_url | file_id }, { type: 'input_file', … }.
    case 'input_image':
      return part.file_id !== undefined || isReference(part.image_url);
    case 'input_file':
      return true;
    // Anthropic: { type: 'image', source: { type: 'base64' | 'url' | 'file' } }, { type: 'document', … }.
    case 'image':
      return !isRecord(part.source) || part.source.type !== 'base64';
    case 'document':
      return true;
    default:
      return false;
  }
}

/** The messages (or Responses input items) of a call whose content may hold parts. */
function turnsOf(operation: Operation, body: Record<string, unknown>): unknown[] {
  if (operation === 'chat' || operation === 'messages') return Array.isArray(body.messages) ? body.messages : [];
  if (operation === 'responses') return Array.isArray(body.input) ? body.input : [];
  return [];
}

/** What `scan` answers when a part expands (or there were too many to look at). */
const FOUND = -1;

/**
 * Looks at `parts` until one expands; answers how many parts have been looked at so far, or
 * FOUND. Anthropic tool results carry content blocks of their own (images among them): those are
 * looked at too, one level down.
 */
function scan(parts: readonly unknown[], seen: number, nested: boolean): number {
  let count = seen;
  for (const part of parts) {
    count += 1;
    if (count > MAX_PARTS) return FOUND;
    if (!isRecord(part)) continue;
    if (expands(part)) return FOUND;
    if (!nested && part.type === 'tool_result' && Array.isArray(part.content)) {
      count = scan(part.content, count, true);
      if (count === FOUND) return FOUND;
    }
  }
  return count;
}

export function carriesUnboundedInput(operation: Operation, body: Record<string, unknown>): boolean {
  let seen = 0;
  for (const turn of turnsOf(operation, body)) {
    if (!isRecord(turn)) continue;
    // A Responses input item may itself be a part (`{ type: 'input_image', … }`).
    if (expands(turn)) return true;
    if (!Array.isArray(turn.content)) continue;
    seen = scan(turn.content, seen, false);
    if (seen === FOUND) return true;
  }
  return false;
}
