/**
 * OpenAI-shaped responses: chat completions, legacy completions, responses, embeddings,
 * transcriptions, model lists and the error envelope. Shapes follow what the official `openai`
 * client parses; only the fields a gateway or a test looks at carry meaning.
 */
import type { RecordedUsage } from './recorder.js';
import { ID_MARKER, dataEvent, jsonReply, literalEvent, namedEvent, type JsonReply, type StreamReply } from './reply.js';
import type { Completion } from './usage.js';

export interface TextRenderInput {
  model: string;
  created: number;
  promptTokens: number;
  completion: Completion;
  /** Completion text split into stream pieces (one piece for JSON replies). */
  pieces: readonly string[];
  /** Whether the usage block is sent at all (JSON) or in the last chunk (streams). */
  withUsage: boolean;
}

function recorded(input: TextRenderInput): RecordedUsage {
  return { promptTokens: input.promptTokens, completionTokens: input.completion.tokens, reported: input.withUsage };
}

function openAiUsage(input: TextRenderInput) {
  return {
    prompt_tokens: input.promptTokens,
    completion_tokens: input.completion.tokens,
    total_tokens: input.promptTokens + input.completion.tokens,
  };
}

const finishReason = (input: TextRenderInput) => (input.completion.truncated ? 'length' : 'stop');

export function chatJson(input: TextRenderInput): JsonReply {
  return jsonReply(
    {
      id: `chatcmpl-${ID_MARKER}`,
      object: 'chat.completion',
      created: input.created,
      model: input.model,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: input.pieces.join(''), refusal: null },
          logprobs: null,
          finish_reason: finishReason(input),
        },
      ],
      ...(input.withUsage ? { usage: openAiUsage(input) } : {}),
    },
    recorded(input),
  );
}

/**
 * Chat stream: a role chunk, one chunk per piece, a finish chunk, then (when usage is asked for) a
 * chunk with empty `choices` and the usage, as the provider does with `stream_options.include_usage`.
 */
export function chatStream(input: TextRenderInput, usageRequested: boolean): StreamReply {
  const base = { id: `chatcmpl-${ID_MARKER}`, object: 'chat.completion.chunk', created: input.created, model: input.model };
  // The provider marks every chunk with `usage: null` when the client asked for usage.
  const nullUsage = usageRequested ? { usage: null } : {};
  const chunk = (delta: Record<string, unknown>, finish: string | null) =>
    dataEvent({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...nullUsage });
  const tail = [chunk({}, finishReason(input))];
  if (input.withUsage) tail.push(dataEvent({ ...base, choices: [], usage: openAiUsage(input) }));
  tail.push(literalEvent('data: [DONE]\n\n'));
  return {
    kind: 'stream',
    head: [chunk({ role: 'assistant', content: '', refusal: null }, null)],
    pieces: input.pieces.map((text) => chunk({ content: text }, null)),
    tail,
    usage: recorded(input),
  };
}

export function completionJson(input: TextRenderInput): JsonReply {
  return jsonReply(
    {
      id: `cmpl-${ID_MARKER}`,
      object: 'text_completion',
      created: input.created,
      model: input.model,
      choices: [{ text: input.pieces.join(''), index: 0, logprobs: null, finish_reason: finishReason(input) }],
      ...(input.withUsage ? { usage: openAiUsage(input) } : {}),
    },
    recorded(input),
  );
}

export function completionStream(input: TextRenderInput): StreamReply {
  const base = { id: `cmpl-${ID_MARKER}`, object: 'text_completion', created: input.created, model: input.model };
  const chunk = (text: string, finish: string | null) =>
    dataEvent({ ...base, choices: [{ text, index: 0, logprobs: null, finish_reason: finish }] });
  const tail = [chunk('', finishReason(input))];
  if (input.withUsage) tail.push(dataEvent({ ...base, choices: [], usage: openAiUsage(input) }));
  tail.push(literalEvent('data: [DONE]\n\n'));
  return { kind: 'stream', head: [], pieces: input.pieces.map((text) => chunk(text, null)), tail, usage: recorded(input) };
}

function responseObject(input: TextRenderInput, done: boolean, maxOutputTokens: number | null) {
  const text = input.pieces.join('');
  return {
    id: `resp_${ID_MARKER}`,
    object: 'response',
    created_at: input.created,
    status: done ? (input.completion.truncated ? 'incomplete' : 'completed') : 'in_progress',
    error: null,
    incomplete_details: done && input.completion.truncated ? { reason: 'max_output_tokens' } : null,
    instructions: null,
    max_output_tokens: maxOutputTokens,
    model: input.model,
    output: done ? [messageItem(text, 'completed')] : [],
    parallel_tool_calls: true,
    previous_response_id: null,
    temperature: 1,
    tool_choice: 'auto',
    tools: [],
    top_p: 1,
    usage: done && input.withUsage
      ? {
          input_tokens: input.promptTokens,
          input_tokens_details: { cached_tokens: 0 },
          output_tokens: input.completion.tokens,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: input.promptTokens + input.completion.tokens,
        }
      : null,
  };
}

function messageItem(text: string, status: 'in_progress' | 'completed') {
  return {
    type: 'message',
    id: `msg_${ID_MARKER}`,
    status,
    role: 'assistant',
    content: status === 'completed' ? [{ type: 'output_text', text, annotations: [] }] : [],
  };
}

export function responsesJson(input: TextRenderInput, maxOutputTokens: number | null): JsonReply {
  return jsonReply(responseObject(input, true, maxOutputTokens), recorded(input));
}

/** The Responses API event sequence, from `response.created` to `response.completed`. */
export function responsesStream(input: TextRenderInput, maxOutputTokens: number | null): StreamReply {
  let sequence = 0;
  const event = (type: string, fields: Record<string, unknown>) => namedEvent(type, { type, sequence_number: sequence++, ...fields });
  const itemId = `msg_${ID_MARKER}`;
  const text = input.pieces.join('');
  const head = [
    event('response.created', { response: responseObject(input, false, maxOutputTokens) }),
    event('response.in_progress', { response: responseObject(input, false, maxOutputTokens) }),
    event('response.output_item.added', { output_index: 0, item: messageItem('', 'in_progress') }),
    event('response.content_part.added', { item_id: itemId, output_index: 0, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } }),
  ];
  const pieces = input.pieces.map((delta) =>
    event('response.output_text.delta', { item_id: itemId, output_index: 0, content_index: 0, delta }),
  );
  const done = input.completion.truncated ? 'response.incomplete' : 'response.completed';
  const tail = [
    event('response.output_text.done', { item_id: itemId, output_index: 0, content_index: 0, text }),
    event('response.content_part.done', { item_id: itemId, output_index: 0, content_index: 0, part: { type: 'output_text', text, annotations: [] } }),
    event('response.output_item.done', { output_index: 0, item: messageItem(text, 'completed') }),
    event(done, { response: responseObject(input, true, maxOutputTokens) }),
  ];
  return { kind: 'stream', head, pieces, tail, usage: recorded(input) };
}

const vectorCache = new Map<number, { floats: number[]; base64: string }>();

/** A fixed unit-ish vector per dimension count, in both encodings the API offers. */
function vector(dimensions: number): { floats: number[]; base64: string } {
  const cached = vectorCache.get(dimensions);
  if (cached !== undefined) return cached;
  const floats = new Float32Array(dimensions);
  for (let i = 0; i < dimensions; i += 1) floats[i] = Math.round(Math.sin(i + 1) * 1000) / 1000;
  const entry = { floats: Array.from(floats), base64: Buffer.from(floats.buffer).toString('base64') };
  vectorCache.set(dimensions, entry);
  return entry;
}

export function embeddingsJson(model: string, inputs: number, dimensions: number, base64: boolean, promptTokens: number, withUsage: boolean): JsonReply {
  const { floats, base64: encoded } = vector(dimensions);
  const data = [];
  for (let index = 0; index < inputs; index += 1) data.push({ object: 'embedding', index, embedding: base64 ? encoded : floats });
  return jsonReply(
    { object: 'list', data, model, ...(withUsage ? { usage: { prompt_tokens: promptTokens, total_tokens: promptTokens } } : {}) },
    { promptTokens, completionTokens: 0, reported: withUsage },
  );
}

export function modelsJson(models: readonly string[], created: number): JsonReply {
  return jsonReply({ object: 'list', data: models.map((id) => ({ id, object: 'model', created, owned_by: 'simulator' })) }, null);
}

export function openAiError(status: number, message: string): JsonReply {
  const type = status === 429 ? 'requests' : status >= 500 ? 'server_error' : 'invalid_request_error';
  const code = status === 429 ? 'rate_limit_exceeded' : null;
  return jsonReply({ error: { message, type, param: null, code } }, null, status);
}
