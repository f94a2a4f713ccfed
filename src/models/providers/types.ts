/**
 * One small interface per provider protocol. An adapter is mostly data: which path serves an
 * operation, how the credential is presented, where usage sits in a JSON reply and in a stream.
 * Nothing here does I/O; upstream.ts sends what `buildRequest` describes.
 */
import type { Usage } from '../pricing.js';

export type Operation = 'chat' | 'completions' | 'responses' | 'embeddings' | 'transcriptions' | 'messages';

export interface BuildInput {
  operation: Operation;
  /** The client's JSON body (already validated as an object); never mutated. */
  body: Record<string, unknown>;
  upstreamModel: string;
  /** Managed or org key; null when the provider needs none (a local OpenAI-compatible server). */
  apiKey: string | null;
  stream: boolean;
  /** Provider headers the client may choose (e.g. `anthropic-version`); already allow-listed. */
  clientHeaders: Record<string, string>;
}

export interface UpstreamRequest {
  path: string;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

/** What a stream observer decides about one server-sent event. */
export interface StreamObserver {
  /**
   * Where, at or after `from`, these bytes (one or more whole events) may hold something the
   * observer must read (-1: nowhere). Usage sits in few events: only the event around each such
   * place is decoded; the rest pass to the client untouched.
   */
  find(bytes: Buffer, from: number): number;
  /** Looks at one complete event (its raw text); false drops it from what the client receives. */
  onEvent(event: string): boolean;
  /** Usage seen so far, or null when the provider never reported it. */
  usage(): Usage | null;
}

export interface ProviderAdapter {
  readonly kind: 'openai' | 'anthropic' | 'openai_compatible';
  supports(operation: Operation): boolean;
  buildRequest(input: BuildInput): UpstreamRequest;
  /** Headers for a multipart upload (transcriptions): only the credential. */
  authHeaders(apiKey: string | null): Record<string, string>;
  parseUsage(operation: Operation, json: unknown): Usage | null;
  /** A fresh observer per stream; `clientWantsUsage` false drops the usage-only chunk we asked for. */
  streamUsage(operation: Operation, clientWantsUsage: boolean): StreamObserver;
}

const USAGE_KEY = Buffer.from('"usage"');
const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;

function skipWhitespace(bytes: Buffer, from: number): number {
  let at = from;
  while (at < bytes.length && (bytes[at] === SPACE || bytes[at] === TAB || bytes[at] === LF || bytes[at] === CR)) at++;
  return at;
}

/**
 * Where the first `"usage"` key with an object value at or after `from` begins (-1: none;
 * `"usage":null`, which OpenAI puts on every chunk of a stream that asked for usage, does not
 * count). JSON may put whitespace around the colon, and compatible servers differ in whether they do.
 */
export function usageObjectAt(bytes: Buffer, from: number): number {
  let key = bytes.indexOf(USAGE_KEY, from);
  while (key !== -1) {
    const colon = skipWhitespace(bytes, key + USAGE_KEY.length);
    if (bytes[colon] === COLON && bytes[skipWhitespace(bytes, colon + 1)] === OPEN_BRACE) return key;
    key = bytes.indexOf(USAGE_KEY, key + USAGE_KEY.length);
  }
  return -1;
}

/** Where the first `"usage"` key at or after `from` begins (Anthropic's events carry it only where it counts). */
export function usageKeyAt(bytes: Buffer, from: number): number {
  return bytes.indexOf(USAGE_KEY, from);
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The JSON payload of an event's `data:` line(s), or undefined when absent or not JSON. */
export function eventData(event: string): unknown {
  let data = '';
  for (const line of event.split('\n')) {
    if (line.startsWith('data:')) data += line.slice(line.charAt(5) === ' ' ? 6 : 5);
  }
  if (data === '' || data === '[DONE]') return undefined;
  try {
    return JSON.parse(data) as unknown;
  } catch {
    return undefined;
  }
}
