/**
 * `POST /v1/audio/transcriptions`: a multipart upload with `file` and `model`. The multipart body is
 * parsed by the platform's own Fetch implementation (undici's FormData parser) rather than by hand.
 * Billing is by audio duration, derived deterministically from the file size (see usage.ts).
 */
import type { Behaviour } from './behaviour.js';
import { errorFor } from './handlers.js';
import { jsonReply, textReply, type JsonReply } from './reply.js';
import { audioSecondsFor, completionText } from './usage.js';

export interface TranscriptionResult {
  reply: JsonReply;
  /** What the request carried, for `/_sim/requests` (never the audio bytes themselves). */
  summary: Record<string, string | number> | null;
}

export async function transcribe(raw: Buffer, contentType: string | undefined, behaviour: Behaviour): Promise<TranscriptionResult> {
  if (contentType === undefined || !contentType.toLowerCase().startsWith('multipart/form-data')) {
    return { reply: errorFor('other', 415, 'multipart/form-data is required'), summary: null };
  }
  let form: FormData;
  try {
    form = await new Response(raw, { headers: { 'content-type': contentType } }).formData();
  } catch {
    return { reply: errorFor('other', 400, 'malformed multipart body'), summary: null };
  }
  const file = form.get('file');
  const model = form.get('model');
  if (typeof file === 'string' || file === null || typeof model !== 'string' || model.length === 0) {
    return { reply: errorFor('other', 400, 'file and model are required'), summary: null };
  }
  const format = form.get('response_format');
  const responseFormat = typeof format === 'string' ? format : 'json';
  const seconds = audioSecondsFor(file.size);
  const text = completionText(behaviour.responseTokens);
  const usage = { promptTokens: 0, completionTokens: 0, reported: behaviour.usage !== 'never', audioSeconds: seconds };
  const summary = { model, responseFormat, fileName: file instanceof File ? file.name : '', fileBytes: file.size };
  if (responseFormat === 'text') return { reply: textReply(text, usage), summary };
  const body: Record<string, unknown> = { text };
  if (responseFormat === 'verbose_json') Object.assign(body, { task: 'transcribe', language: 'english', duration: seconds, segments: [] });
  if (usage.reported) body.usage = { type: 'duration', seconds };
  return { reply: jsonReply(body, usage), summary };
}
