/**
 * A rendered response, kept in a form that can be cached and replayed cheaply: bodies are rendered
 * once per shape with a placeholder where the response id goes, split on it, and joined with a fresh
 * id per request. The benchmark baseline must cost the simulator as little as possible.
 */
import type { RecordedUsage } from './recorder.js';

/** Placeholder for the per-request id; a control character no JSON value of ours can contain raw. */
export const ID_MARKER = '\u0001ID\u0001';
const ESCAPED_MARKER = JSON.stringify(ID_MARKER).slice(1, -1);

export interface JsonReply {
  kind: 'json';
  status: number;
  contentType: string;
  /** Body split on the id placeholder. */
  parts: string[];
  usage: RecordedUsage | null;
}

export interface StreamReply {
  kind: 'stream';
  /** Events before the content (role chunk, message_start, …), each split on the id placeholder. */
  head: string[][];
  /** One event per content piece. */
  pieces: string[][];
  /** Final events (finish reason, usage, terminator). */
  tail: string[][];
  usage: RecordedUsage | null;
}

export type Reply = JsonReply | StreamReply;

function splitOnMarker(text: string): string[] {
  return text.split(text.includes(ID_MARKER) ? ID_MARKER : ESCAPED_MARKER);
}

export function jsonReply(value: unknown, usage: RecordedUsage | null, status = 200): JsonReply {
  return { kind: 'json', status, contentType: 'application/json', parts: splitOnMarker(JSON.stringify(value)), usage };
}

export function textReply(text: string, usage: RecordedUsage | null): JsonReply {
  return { kind: 'json', status: 200, contentType: 'text/plain; charset=utf-8', parts: [text], usage };
}

/** An SSE `data:` event (OpenAI chat and completions streams). */
export function dataEvent(value: unknown): string[] {
  return splitOnMarker(`data: ${JSON.stringify(value)}\n\n`);
}

/** An SSE event with a name (Anthropic messages and OpenAI responses streams). */
export function namedEvent(name: string, value: unknown): string[] {
  return splitOnMarker(`event: ${name}\ndata: ${JSON.stringify(value)}\n\n`);
}

export function literalEvent(text: string): string[] {
  return [text];
}

export function fill(parts: readonly string[], id: string): string {
  return parts.length === 1 ? (parts[0] ?? '') : parts.join(id);
}

export function fillStream(reply: StreamReply, id: string): string {
  let out = '';
  for (const event of reply.head) out += fill(event, id);
  for (const event of reply.pieces) out += fill(event, id);
  for (const event of reply.tail) out += fill(event, id);
  return out;
}
