/**
 * The reservation a model call makes before anything is sent upstream must bound what the call
 * may spend: every completion it asks for (`n`, `best_of`) at the largest output bound it set.
 * An estimate below that would let the provider bill more than was reserved, and the settlement
 * (which never charges above the reservation) would leave the difference unpaid.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_INPUT_TOKENS } from '../../src/models/config.js';
import { MAX_CHOICES, MIN_AUDIO_BYTES_PER_SECOND } from '../../src/models/estimate.js';
import { DEFAULT_MODELS, startRig, type Rig } from './harness.js';

function post(rig: Rig, path: string, body: Record<string, unknown>): Promise<{ status: number; json: { error?: { code?: string; message?: string } }; bytes: number }> {
  const text = JSON.stringify(body);
  return fetch(`${rig.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer pk-member' }, body: text }).then(async (res) => ({
    status: res.status,
    json: (await res.json()) as { error?: { code?: string; message?: string } },
    bytes: Buffer.byteLength(text),
  }));
}

const chat = (extra: Record<string, unknown>) => ({ model: 'chat', messages: [{ role: 'user', content: 'hello' }], ...extra });

describe('the estimate a model call reserves', () => {
  let rig: Rig;
  beforeAll(async () => {
    rig = await startRig({
      models: [
        ...DEFAULT_MODELS,
        { alias: 'caching-claude', provider: 'sim-anthropic', upstreamModel: 'sim-claude', price: { inputPerMTok: 3_000_000, outputPerMTok: 15_000_000, cachedInputPerMTok: 300_000, cacheWriteInputPerMTok: 3_750_000, cacheWriteLongInputPerMTok: 6_000_000 }, maxOutputTokens: 100 },
      ],
    });
  }, 180_000);
  afterAll(async () => rig.close());
  afterEach(() => {
    rig.admissions.length = 0;
    rig.primary.reset();
  });

  /** Output tokens the last admission reserved: its token bound less the input bound (one token per request byte). */
  const reservedOutput = (bytes: number): number => (rig.admissions.at(-1)?.cost?.maxTokens ?? Number.NaN) - bytes;

  it('multiplies the output bound by the completions asked for (n on chat; the larger of n and best_of on completions)', async () => {
    const one = await post(rig, '/v1/chat/completions', chat({ max_tokens: 10 }));
    expect(one.status).toBe(200);
    expect(reservedOutput(one.bytes)).toBe(10);
    const four = await post(rig, '/v1/chat/completions', chat({ max_tokens: 10, n: 4 }));
    expect(four.status).toBe(200);
    expect(reservedOutput(four.bytes)).toBe(40);
    // Without a bound of its own, each completion may run to the model's maxOutputTokens (1000).
    const unbounded = await post(rig, '/v1/chat/completions', chat({ n: 3 }));
    expect(reservedOutput(unbounded.bytes)).toBe(3000);
    const bestOf = await post(rig, '/v1/completions', { model: 'chat', prompt: 'say', max_tokens: 5, n: 2, best_of: 3 });
    expect(bestOf.status).toBe(200);
    expect(reservedOutput(bestOf.bytes)).toBe(15);
  });

  it('takes the largest of the output bounds a call sets, not the first', async () => {
    const both = await post(rig, '/v1/chat/completions', chat({ max_tokens: 1, max_completion_tokens: 300 }));
    expect(both.status).toBe(200);
    expect(reservedOutput(both.bytes)).toBe(300);
    const reversed = await post(rig, '/v1/chat/completions', chat({ max_tokens: 300, max_completion_tokens: 1 }));
    expect(reservedOutput(reversed.bytes)).toBe(300);
  });

  it('bounds an upload\'s duration by its size at 4 kbit/s, below the leanest codec a transcription may carry', async () => {
    const boundary = 'estimate-boundary';
    const audio = Buffer.alloc(50_000, 7);
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="model"\r\n\r\nwhisper\r\n--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="memo.ogg"\r\ncontent-type: audio/ogg\r\n\r\n`),
      audio,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const res = await fetch(`${rig.url}/v1/audio/transcriptions`, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, authorization: 'Bearer pk-member' }, body });
    expect(res.status).toBe(200);
    // The whisper model is priced at 100 micro-units per second of audio and nothing per token.
    expect(MIN_AUDIO_BYTES_PER_SECOND).toBe(500);
    expect(rig.admissions.at(-1)?.cost?.maxMicros).toBe(Math.ceil(body.length / 500) * 100);
  });

  it('reserves the context window for content the provider expands (an image by URL), not its few bytes', async () => {
    const inline = await post(rig, '/v1/chat/completions', chat({ max_tokens: 10, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }] }] }));
    expect(inline.status).toBe(200);
    expect(reservedOutput(inline.bytes)).toBe(10);
    const byUrl = await post(rig, '/v1/chat/completions', chat({ max_tokens: 10, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://img.example/cat.png' } }] }] }));
    expect(byUrl.status).toBe(200);
    // The chat model sets no maxInputTokens: the default context bound, plus the output.
    expect(rig.admissions.at(-1)?.cost?.maxTokens).toBe(DEFAULT_MAX_INPUT_TOKENS + 10);
  });

  it('prices the input bound at the dearest input rate: the caller chooses what is written to the cache, and for how long', async () => {
    const text = JSON.stringify({ model: 'caching-claude', max_tokens: 20, messages: [{ role: 'user', content: [{ type: 'text', text: 'remember this', cache_control: { type: 'ephemeral', ttl: '1h' } }] }] });
    const res = await fetch(`${rig.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'pk-member' }, body: text });
    expect(res.status).toBe(200);
    expect(rig.admissions.at(-1)?.cost?.maxMicros).toBe(Math.ceil((Buffer.byteLength(text) * 6_000_000 + 20 * 15_000_000) / 1_000_000));
  });

  it('refuses a completion count it cannot bound with 400 in the OpenAI envelope, before admission and before the provider', async () => {
    for (const [field, value] of [['n', 0], ['n', -1], ['n', 1.5], ['n', '2'], ['n', MAX_CHOICES + 1], ['best_of', 0], ['best_of', MAX_CHOICES + 1]] as const) {
      const answer = await post(rig, field === 'best_of' ? '/v1/completions' : '/v1/chat/completions', field === 'best_of' ? { model: 'chat', prompt: 'p', [field]: value } : chat({ [field]: value }));
      expect({ field, value, status: answer.status, code: answer.json.error?.code }).toEqual({ field, value, status: 400, code: 'validation_failed' });
      expect(answer.json.error?.message).toContain(`body.${field}`);
    }
    expect(rig.admissions).toHaveLength(0);
    expect(rig.primary.requests()).toHaveLength(0);
    // The ceiling itself is a count the estimate can bound.
    expect((await post(rig, '/v1/chat/completions', chat({ max_tokens: 1, n: MAX_CHOICES }))).status).toBe(200);
    expect(reservedOutput(Buffer.byteLength(JSON.stringify(chat({ max_tokens: 1, n: MAX_CHOICES }))))).toBe(MAX_CHOICES);
  });
});
