/**
 * Deterministic token accounting for the simulator. A test that sends a request can compute the
 * exact usage the simulator will report (and read it back from `/_sim/requests`), so metering
 * assertions compare exact numbers rather than ranges.
 *
 * Rule: prompt tokens = max(1, ceil(characters of prompt text / 4)); completion tokens = the
 * configured response size, capped by the request's own maximum when it names one.
 */

const VOCABULARY = ['lorem', 'ipsum', 'dolor', 'sit', 'amet', 'consectetur', 'adipiscing', 'elit'];

export function tokensForCharacters(characters: number): number {
  return Math.max(1, Math.ceil(characters / 4));
}

/** Sums the text length found in a message `content` (a string or an array of typed parts). */
function contentCharacters(content: unknown): number {
  if (typeof content === 'string') return content.length;
  if (!Array.isArray(content)) return 0;
  let total = 0;
  for (const part of content as unknown[]) {
    if (typeof part === 'string') total += part.length;
    else if (isRecord(part)) {
      if (typeof part.text === 'string') total += part.text.length;
      else if (part.content !== undefined) total += contentCharacters(part.content);
    }
  }
  return total;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function messagesCharacters(messages: unknown): number {
  if (!Array.isArray(messages)) return 0;
  let total = 0;
  for (const message of messages as unknown[]) {
    if (isRecord(message)) total += contentCharacters(message.content);
    else if (typeof message === 'string') total += message.length;
  }
  return total;
}

/** Prompt characters for a string, a list of strings, or token arrays (each token counts as 4). */
function promptCharacters(prompt: unknown): number {
  if (typeof prompt === 'string') return prompt.length;
  if (!Array.isArray(prompt)) return 0;
  let total = 0;
  for (const item of prompt as unknown[]) {
    if (typeof item === 'string') total += item.length;
    else if (typeof item === 'number') total += 4;
    else if (Array.isArray(item)) total += item.length * 4;
  }
  return total;
}

export type Protocol = 'chat' | 'completions' | 'responses' | 'embeddings' | 'messages';

/** Prompt tokens the simulator reports for a parsed request body of the given protocol. */
export function promptTokensFor(protocol: Protocol, body: Record<string, unknown>): number {
  switch (protocol) {
    case 'chat':
      return tokensForCharacters(messagesCharacters(body.messages));
    case 'completions':
      return tokensForCharacters(promptCharacters(body.prompt) + (typeof body.suffix === 'string' ? body.suffix.length : 0));
    case 'responses': {
      const input = typeof body.input === 'string' ? body.input.length : messagesCharacters(body.input);
      const instructions = typeof body.instructions === 'string' ? body.instructions.length : 0;
      return tokensForCharacters(input + instructions);
    }
    case 'embeddings':
      return tokensForCharacters(promptCharacters(body.input));
    case 'messages':
      return tokensForCharacters(contentCharacters(body.system) + messagesCharacters(body.messages));
  }
}

/** The request's own completion cap, under whichever name its protocol uses. */
export function requestedMaxTokens(body: Record<string, unknown>): number | undefined {
  for (const name of ['max_completion_tokens', 'max_tokens', 'max_output_tokens']) {
    const value = body[name];
    if (typeof value === 'number' && Number.isInteger(value) && value > 0) return value;
  }
  return undefined;
}

export interface Completion {
  tokens: number;
  /** True when the request's cap cut the completion short (finish reason `length` / `max_tokens`). */
  truncated: boolean;
}

export function completionFor(configuredTokens: number, body: Record<string, unknown>): Completion {
  const cap = requestedMaxTokens(body);
  if (cap !== undefined && cap < configuredTokens) return { tokens: cap, truncated: true };
  return { tokens: configuredTokens, truncated: false };
}

const textCache = new Map<string, string[]>();
const TEXT_CACHE_LIMIT = 512;

/**
 * The completion text split into `chunks` pieces (tokens spread evenly, one word per token).
 * Cached: the benchmark asks for the same few shapes over and over.
 */
export function completionPieces(tokens: number, chunks: number): readonly string[] {
  const pieceCount = Math.max(1, Math.min(chunks, tokens));
  const key = `${tokens}:${pieceCount}`;
  const cached = textCache.get(key);
  if (cached !== undefined) return cached;
  const pieces: string[] = [];
  let word = 0;
  for (let piece = 0; piece < pieceCount; piece += 1) {
    const end = Math.round(((piece + 1) * tokens) / pieceCount);
    let text = '';
    for (; word < end; word += 1) text += (word === 0 ? '' : ' ') + (VOCABULARY[word % VOCABULARY.length] ?? '');
    pieces.push(text);
  }
  if (textCache.size >= TEXT_CACHE_LIMIT) textCache.clear();
  textCache.set(key, pieces);
  return pieces;
}

export function completionText(tokens: number): string {
  return completionPieces(tokens, 1)[0] ?? '';
}

/** Seconds of audio the simulator bills for an upload: 16 kHz, 16-bit mono PCM, rounded up. */
export function audioSecondsFor(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / 32_000));
}
