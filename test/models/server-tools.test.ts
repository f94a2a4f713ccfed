/**
 * A call asking for a tool the provider runs (and bills per use, outside token usage) reaches only
 * models whose operator allowed such tools; anything else is refused before admission and before
 * the provider, and fallbacks that do not allow them are left out.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODELS, PRICE, startRig, type Rig } from './harness.js';

async function post(rig: Rig, path: string, body: Record<string, unknown>): Promise<{ status: number; error: { code?: string; message?: string; type?: string } | undefined }> {
  const res = await fetch(`${rig.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer pk-member' }, body: JSON.stringify(body) });
  const json = (await res.json()) as { error?: { code?: string; message?: string; type?: string } };
  return { status: res.status, error: json.error };
}

const messages = [{ role: 'user', content: 'what is new?' }];

describe('provider-run tools', () => {
  let rig: Rig;
  beforeAll(async () => {
    rig = await startRig({
      models: [
        ...DEFAULT_MODELS,
        { alias: 'search-chat', provider: 'sim', upstreamModel: 'sim-chat', price: PRICE, maxOutputTokens: 100, allowServerTools: true, fallbacks: ['chat-backup'] },
        { alias: 'search-claude', provider: 'sim-anthropic', upstreamModel: 'sim-claude', price: PRICE, maxOutputTokens: 100, allowServerTools: true },
      ],
    });
  }, 180_000);
  afterAll(async () => rig.close());
  afterEach(() => {
    rig.admissions.length = 0;
    rig.primary.reset();
    rig.backup.reset();
  });

  it('are refused with 400 on a model that does not allow them, before admission and before the provider', async () => {
    for (const [path, body, field] of [
      ['/v1/chat/completions', { model: 'chat', messages, web_search_options: {} }, 'body.web_search_options'],
      ['/v1/chat/completions', { model: 'chat', messages, tools: [{ type: 'function', function: { name: 'f' } }, { type: 'web_search' }] }, 'body.tools[1]'],
      ['/v1/responses', { model: 'chat', input: 'news', tools: [{ type: 'web_search_preview' }] }, 'body.tools[0]'],
      ['/v1/messages', { model: 'claude', max_tokens: 50, messages, tools: [{ type: 'web_search_20250305', name: 'web_search' }] }, 'body.tools[0]'],
    ] as const) {
      const answer = await post(rig, path, body);
      expect({ path, field, status: answer.status, code: answer.error?.code }).toEqual({ path, field, status: 400, code: 'validation_failed' });
      expect(answer.error?.message).toContain(`Invalid ${field}: the tool`);
    }
    expect(rig.admissions).toHaveLength(0);
    expect(rig.primary.requests()).toHaveLength(0);
  });

  it('a tool name from the caller is quoted and cut short in the refusal', async () => {
    const answer = await post(rig, '/v1/responses', { model: 'chat', input: 'x', tools: [{ type: `evil\u0000${'t'.repeat(500)}` }] });
    expect(answer.status).toBe(400);
    expect(answer.error?.message).toContain('"evil\\u0000ttt');
    expect(answer.error?.message?.length ?? 0).toBeLessThan(300);
  });

  it('client-run tools always pass, and a model that allows provider-run tools serves them', async () => {
    expect((await post(rig, '/v1/chat/completions', { model: 'chat', messages, tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }] })).status).toBe(200);
    expect((await post(rig, '/v1/messages', { model: 'claude', max_tokens: 50, messages, tools: [{ name: 'get_weather', input_schema: { type: 'object' } }] })).status).toBe(200);
    expect((await post(rig, '/v1/chat/completions', { model: 'search-chat', messages, web_search_options: {} })).status).toBe(200);
    expect((await post(rig, '/v1/messages', { model: 'search-claude', max_tokens: 50, messages, tools: [{ type: 'web_search_20250305', name: 'web_search' }] })).status).toBe(200);
    expect(rig.primary.requests()).toHaveLength(4);
  });

  it('leaves out fallbacks that do not allow them: the call fails rather than reaching one', async () => {
    rig.primary.configure({ failure: { mode: 500, count: 1 } });
    const answer = await post(rig, '/v1/chat/completions', { model: 'search-chat', messages, web_search_options: {} });
    expect(answer.status).toBe(502);
    expect(rig.backup.requests()).toHaveLength(0);
    // Without the tool the same model falls back as configured.
    rig.primary.configure({ failure: { mode: 500, count: 1 } });
    expect((await post(rig, '/v1/chat/completions', { model: 'search-chat', messages })).status).toBe(200);
    expect(rig.backup.requests()).toHaveLength(1);
  });
});
