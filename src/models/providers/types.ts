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
