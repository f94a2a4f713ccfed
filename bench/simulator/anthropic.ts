/**
 * Anthropic-shaped responses: `POST /v1/messages` as JSON and as the event stream
 * (message_start → content_block_start → ping → content_block_delta… → content_block_stop →
 * message_delta with the output usage → message_stop), the model list and the error envelope.
 */
import type { TextRenderInput } from './openai.js';
import type { RecordedUsage } from './recorder.js';
import { ID_MARKER, jsonReply, namedEvent, type JsonReply, type StreamReply } from './reply.js';

function recorded(input: TextRenderInput): RecordedUsage {
  return { promptTokens: input.promptTokens, completionTokens: input.completion.tokens, reported: input.withUsage };
}

const stopReason = (input: TextRenderInput) => (input.completion.truncated ? 'max_tokens' : 'end_turn');

function usageBlock(inputTokens: number, outputTokens: number) {
  return { input_tokens: inputTokens, output_tokens: outputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
}

export function messagesJson(input: TextRenderInput): JsonReply {
  return jsonReply(
    {
      id: `msg_${ID_MARKER}`,
      type: 'message',
      role: 'assistant',
      model: input.model,
      content: [{ type: 'text', text: input.pieces.join('') }],
      stop_reason: stopReason(input),
      stop_sequence: null,
      // `never` still needs a usage object for the SDK's types; zeros mark it as not reported.
      usage: input.withUsage ? usageBlock(input.promptTokens, input.completion.tokens) : usageBlock(0, 0),
    },
    recorded(input),
  );
}

export function messagesStream(input: TextRenderInput): StreamReply {
  const start = {
    type: 'message_start',
    message: {
      id: `msg_${ID_MARKER}`,
      type: 'message',
      role: 'assistant',
      model: input.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: input.withUsage ? usageBlock(input.promptTokens, 1) : usageBlock(0, 0),
    },
  };
  const delta = {
    type: 'message_delta',
    delta: { stop_reason: stopReason(input), stop_sequence: null },
    usage: { output_tokens: input.withUsage ? input.completion.tokens : 0 },
  };
  return {
    kind: 'stream',
    head: [
      namedEvent('message_start', start),
      namedEvent('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
      namedEvent('ping', { type: 'ping' }),
    ],
    pieces: input.pieces.map((text) =>
      namedEvent('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }),
    ),
    tail: [
      namedEvent('content_block_stop', { type: 'content_block_stop', index: 0 }),
      namedEvent('message_delta', delta),
      namedEvent('message_stop', { type: 'message_stop' }),
    ],
    usage: recorded(input),
  };
}

export function anthropicModelsJson(models: readonly string[], createdAt: string): JsonReply {
  return jsonReply(
    {
      data: models.map((id) => ({ type: 'model', id, display_name: id, created_at: createdAt })),
      has_more: false,
      first_id: models[0] ?? null,
      last_id: models[models.length - 1] ?? null,
    },
    null,
  );
}

export function anthropicError(status: number, message: string): JsonReply {
  const type =
    status === 429 ? 'rate_limit_error'
    : status === 401 ? 'authentication_error'
    : status === 404 ? 'not_found_error'
    : status === 413 ? 'request_too_large'
    : status >= 500 ? 'api_error'
    : 'invalid_request_error';
  return jsonReply({ type: 'error', error: { type, message } }, null, status);
}
