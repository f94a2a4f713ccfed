/**
 * Fallback, timeouts, abandoned streams, unmetered settlement, bring-your-own keys that never leak,
 * anonymous free-model use with its per-address limits, and custom-endpoint address checks.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import type { Resolver } from '../../src/egress/index.js';
import { checkCustomEndpoint } from '../../src/models/index.js';
import { modelsDb } from '../../src/models/tables.js';
import { DEFAULT_MODELS, MANAGED_KEY, PRICE, eventually, startRig, usageSince, usageTotals, type Rig } from './harness.js';

const chatBody = (model: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model, messages: [{ role: 'user', content: 'hello' }], ...extra });

function post(rig: Rig, path: string, body: string, headers: Record<string, string> = { authorization: 'Bearer pk-member' }, signal?: AbortSignal): Promise<Response> {
  return fetch(`${rig.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body, ...(signal === undefined ? {} : { signal }) });
}

describe('fallback, timeouts, abandoned streams', () => {
  let rig: Rig;
  beforeAll(async () => {
    rig = await startRig({
      providers: (primary, backup) => [
        { id: 'sim', kind: 'openai', baseUrl: primary, apiKey: { env: 'SIM_KEY' }, timeoutMs: 300, responseTimeoutMs: 300 },
        { id: 'sim-backup', kind: 'openai_compatible', baseUrl: backup, timeoutMs: 300, responseTimeoutMs: 300 },
        { id: 'sim-anthropic', kind: 'anthropic', baseUrl: primary, apiKey: { env: 'SIM_KEY' }, timeoutMs: 300, responseTimeoutMs: 300 },
        // Streams must start within 300 ms (the HTTP client's timers fire within about a second);
        // a whole non-streamed answer may take 2.5 s.
        { id: 'sim-patient', kind: 'openai_compatible', baseUrl: backup, timeoutMs: 300, responseTimeoutMs: 2500 },
      ],
      models: [...DEFAULT_MODELS, { alias: 'patient-chat', provider: 'sim-patient', upstreamModel: 'sim-chat', price: PRICE, maxOutputTokens: 1000 }],
    });
  }, 180_000);
  afterAll(async () => rig.close());
  afterEach(() => {
    rig.primary.reset();
    rig.backup.reset();
  });

  it('a 500 from the first provider falls back to the second, which answers', async () => {
    rig.primary.configure({ failure: { mode: 500, count: 1 } });
    const response = await post(rig, '/v1/chat/completions', chatBody('chat'));
    expect(response.status).toBe(200);
    expect(rig.primary.requests()).toHaveLength(1);
    expect(rig.backup.requests()).toHaveLength(1);
    // The backup is an OpenAI-compatible server with no managed key: no credential is sent.
    expect(rig.backup.lastRequest()?.headers.authorization).toBeUndefined();
    expect(rig.settlements.at(-1)?.outcome.kind).toBe('success');
  });

  it('a 429 also falls back', async () => {
    rig.primary.configure({ failure: { mode: 429, count: 1 } });
    expect((await post(rig, '/v1/chat/completions', chatBody('chat'))).status).toBe(200);
    expect(rig.backup.requests()).toHaveLength(1);
  });

  it('both failing gives one clean error and releases the reservation', async () => {
    rig.primary.configure({ failure: { mode: 500, count: 5 } });
    rig.backup.configure({ failure: { mode: 500, count: 5 } });
    const response = await post(rig, '/v1/chat/completions', chatBody('chat'));
    expect(response.status).toBe(502);
    const body = (await response.json()) as { error: { code: string; type: string; message: string } };
    expect(body.error).toMatchObject({ code: 'upstream_error', type: 'server_error' });
    expect(JSON.stringify(body)).not.toContain(MANAGED_KEY);
    expect(rig.settlements.at(-1)?.outcome).toEqual({ kind: 'upstream_failure', reason: 'error' });
  });

  it('a timeout counts as a failure: the hung provider is left and the backup answers', async () => {
    rig.primary.configure({ failure: { mode: 'hang', count: 1 } });
    const started = Date.now();
    const response = await post(rig, '/v1/chat/completions', chatBody('chat'));
    expect(response.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(rig.backup.requests()).toHaveLength(1);
  });

  it('when every provider times out the error is upstream_timeout (504)', async () => {
    rig.primary.configure({ failure: { mode: 'hang', count: 1 } });
    rig.backup.configure({ failure: { mode: 'hang', count: 1 } });
    const response = await post(rig, '/v1/chat/completions', chatBody('chat'));
    expect(response.status).toBe(504);
    expect(rig.settlements.at(-1)?.outcome).toEqual({ kind: 'upstream_failure', reason: 'timeout' });
  });

  it('a non-streamed answer may take longer than timeoutMs (up to responseTimeoutMs); a stream must start within timeoutMs', async () => {
    rig.backup.configure({ latencyMs: 1500 });
    const whole = await post(rig, '/v1/chat/completions', chatBody('patient-chat'));
    expect(whole.status).toBe(200);
    expect(rig.settlements.at(-1)?.outcome.kind).toBe('success');
    const stream = await post(rig, '/v1/chat/completions', chatBody('patient-chat', { stream: true }));
    expect(stream.status).toBe(504);
    expect(rig.settlements.at(-1)?.outcome).toEqual({ kind: 'upstream_failure', reason: 'timeout' });
  });

  it('a non-streamed answer slower than responseTimeoutMs times out', async () => {
    rig.backup.configure({ latencyMs: 4500 });
    const started = Date.now();
    const response = await post(rig, '/v1/chat/completions', chatBody('patient-chat'));
    expect(response.status).toBe(504);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2400);
    expect(rig.settlements.at(-1)?.outcome).toEqual({ kind: 'upstream_failure', reason: 'timeout' });
  });

  it('a stream the client abandons stops the upstream request within 1 s and is settled once, unmetered', async () => {
    rig.primary.configure({ streamChunks: 50, chunkDelayMs: 100 });
    const before = await usageTotals(rig);
    const controller = new AbortController();
    const response = await post(rig, '/v1/chat/completions', chatBody('chat', { stream: true }), { authorization: 'Bearer pk-member' }, controller.signal);
    const requestId = response.headers.get('x-request-id') ?? '';
    const reader = response.body?.getReader();
    await reader?.read();
    const abortedAt = Date.now();
    controller.abort();
    await eventually(() => rig.primary.lastRequest()?.outcome === 'aborted', 1000);
    expect(Date.now() - abortedAt).toBeLessThan(1000);
    await eventually(() => rig.settlements.some((s) => s.requestId === requestId));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const mine = rig.settlements.filter((s) => s.requestId === requestId);
    expect(mine).toEqual([{ requestId, outcome: { kind: 'unmetered', reason: 'client_abort' } }]);
    const metered = await usageSince(rig, before);
    expect(metered).toMatchObject({ requests: 1, unmeteredRequests: 1 });
    expect(metered.costMicros).toBeGreaterThan(0);
  });

  it('a stream that ends without usage is settled at the reserved maximum and flagged', async () => {
    const before = await usageTotals(rig);
    rig.primary.configure({ usage: 'never' });
    const response = await post(rig, '/v1/chat/completions', chatBody('chat', { stream: true, max_tokens: 100 }));
    const requestId = response.headers.get('x-request-id') ?? '';
    await response.text();
    await eventually(() => rig.settlements.some((s) => s.requestId === requestId));
    expect(rig.settlements.find((s) => s.requestId === requestId)?.outcome).toEqual({ kind: 'unmetered', reason: 'no_usage' });
    const metered = await usageSince(rig, before);
    expect(metered).toMatchObject({ requests: 1, unmeteredRequests: 1 });
    // The maximum: every body byte as an input token plus max_tokens, at the dearer of the chain.
    expect(metered.costMicros).toBeGreaterThanOrEqual(Math.ceil((100 * 10_000_000) / 1_000_000));
  });
});

describe('bring your own key', () => {
  let rig: Rig;
  const ORG_KEY = 'sk-org-own-key-SHOULD-NEVER-LEAK-4242';
  beforeAll(async () => {
    rig = await startRig({ primary: {} });
  }, 180_000);
  afterAll(async () => rig.close());

  it('is write-only, used upstream instead of the managed key, and never appears in a response or log line', async () => {
    const put = await fetch(`${rig.url}/api/orgs/org_models_test/providers/sim/key`, {
      method: 'PUT',
      headers: { authorization: 'Bearer pk-admin', 'content-type': 'application/json' },
      body: JSON.stringify({ apiKey: ORG_KEY }),
    });
    expect(put.status).toBe(204);
    const memberPut = await fetch(`${rig.url}/api/orgs/org_models_test/providers/sim/key`, {
      method: 'PUT',
      headers: { authorization: 'Bearer pk-member', 'content-type': 'application/json' },
      body: JSON.stringify({ apiKey: 'x' }),
    });
    expect(memberPut.status).toBe(403);
    const bodies: string[] = [];
    const list = await fetch(`${rig.url}/api/orgs/org_models_test/providers`, { headers: { authorization: 'Bearer pk-admin' } });
    bodies.push(await list.text());
    expect(JSON.parse(bodies[0] ?? '{}')).toMatchObject({ data: expect.arrayContaining([expect.objectContaining({ id: 'sim', ownKey: true })]) });

    const ok = await post(rig, '/v1/chat/completions', chatBody('chat'));
    bodies.push(await ok.text());
    expect(ok.status).toBe(200);
    expect(rig.primary.lastRequest()?.headers.authorization).toBe(`Bearer ${ORG_KEY}`);
    const streamed = await post(rig, '/v1/chat/completions', chatBody('chat', { stream: true }));
    bodies.push(await streamed.text());

    // The provider rejects the key (401 upstream, echoing it as some providers do): the caller
    // gets a clean gateway error, no key material.
    rig.primary.configure({ failure: null });
    const rejecting = await fetch(`${rig.primary.url}/_sim/config`, { method: 'GET' });
    bodies.push(''); // the simulator's own control answer is not Portcullis output
    await rejecting.text();
    const sealed = await modelsDb(rig.store.db).selectFrom('org_provider_keys').select('sealed').executeTakeFirstOrThrow();
    expect(sealed.sealed).not.toContain(ORG_KEY);

    for (const body of bodies) expect(body).not.toContain(ORG_KEY);
    expect(rig.logs.length).toBeGreaterThan(0);
    for (const line of rig.logs) {
      expect(line).not.toContain(ORG_KEY);
      expect(line).not.toContain(MANAGED_KEY);
    }
  });

  it('a provider refusing the key falls back, and with nothing left gives a gateway error without the key', async () => {
    // Simulators demanding a different key answer 401 to ours.
    await rig.close();
    rig = await startRig({ primary: { apiKey: 'sk-something-else-entirely-000000' }, backup: { apiKey: 'sk-and-another-one-000000000000' } });
    const response = await post(rig, '/v1/chat/completions', chatBody('chat'));
    const text = await response.text();
    expect(response.status).toBe(502);
    expect(rig.primary.requests()).toHaveLength(1);
    expect(rig.backup.requests()).toHaveLength(1);
    expect(text).not.toContain(MANAGED_KEY);
    for (const line of rig.logs) expect(line).not.toContain(MANAGED_KEY);
  });
});

describe('anonymous use and free models', () => {
  let rig: Rig;
  const clock = new ManualClock(Date.UTC(2026, 10, 22, 10, 0, 0));
  beforeAll(async () => {
    rig = await startRig({ clock, freeModels: { perIpHourly: 3, anonymousPerIpDaily: 5 } });
  }, 180_000);
  afterAll(async () => rig.close());

  it('a free model answers anonymously, a paid one is 401 paid_model_auth_required, and the per-IP limits give 429', async () => {
    const free = await post(rig, '/v1/chat/completions', chatBody('free-chat'), {});
    expect(free.status).toBe(200);
    const paid = await post(rig, '/v1/chat/completions', chatBody('chat'), {});
    expect(paid.status).toBe(401);
    expect(((await paid.json()) as { error: { code: string } }).error.code).toBe('paid_model_auth_required');

    const models = (await (await fetch(`${rig.url}/v1/models`)).json()) as { data: { id: string }[] };
    expect(models.data.map((m) => m.id)).toEqual(['free-chat']);

    expect((await post(rig, '/v1/chat/completions', chatBody('free-chat'), {})).status).toBe(200);
    expect((await post(rig, '/v1/chat/completions', chatBody('free-chat'), {})).status).toBe(200);
    const limited = await post(rig, '/v1/chat/completions', chatBody('free-chat'), {});
    expect(limited.status).toBe(429);
    expect(((await limited.json()) as { error: { code: string } }).error.code).toBe('free_model_limit_reached');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);

    // Next hour: the hourly window resets, but the anonymous daily cap (5) still counts.
    clock.advance(60 * 60 * 1000);
    expect((await post(rig, '/v1/chat/completions', chatBody('free-chat'), {})).status).toBe(200);
    expect((await post(rig, '/v1/chat/completions', chatBody('free-chat'), {})).status).toBe(200);
    const daily = await post(rig, '/v1/chat/completions', chatBody('free-chat'), {});
    expect(daily.status).toBe(429);
    expect(((await daily.json()) as { error: { limit: string } }).error.limit).toBe('daily');
  });

  it('free-model usage buckets older than the retention are deleted in batches; paid ones stay', async () => {
    expect((await post(rig, '/v1/chat/completions', chatBody('chat'), { authorization: 'Bearer pk-member' })).status).toBe(200);
    await rig.service.usage.flush();
    const db = modelsDb(rig.store.db);
    const count = async (free: boolean) => Number((await db.selectFrom('usage_rollups').select((eb) => eb.fn.countAll<string>().as('n')).where('free', '=', free).executeTakeFirstOrThrow()).n);
    const freeBefore = await count(true);
    expect(freeBefore).toBeGreaterThan(1);
    expect(await count(false)).toBe(1);
    const { deleteExpiredFreeUsage } = await import('../../src/models/index.js');
    // Nothing is old enough to go yet: the cutoff lies before every bucket.
    expect(await deleteExpiredFreeUsage(rig.store.db, new Date(clock.now() - 8 * 24 * 3600 * 1000), { batchSize: 1 })).toBe(0);
    const deleted = await deleteExpiredFreeUsage(rig.store.db, new Date(clock.now() + 8 * 24 * 3600 * 1000), { batchSize: 1 });
    expect(deleted).toBe(freeBefore);
    expect(await count(true)).toBe(0);
    expect(await count(false)).toBe(1);
  });
});

describe('free-model limit before authentication', () => {
  let rig: Rig;
  beforeAll(async () => {
    rig = await startRig({ freeModels: { perIpHourly: 2, anonymousPerIpDaily: 100 } });
  }, 180_000);
  afterAll(async () => rig.close());

  it('counts free-model requests per address before any credential is checked, for every caller; paid models are not counted', async () => {
    const wrong = { authorization: 'Bearer pk-wrong' };
    expect((await post(rig, '/v1/chat/completions', chatBody('free-chat'), wrong)).status).toBe(401);
    expect((await post(rig, '/v1/chat/completions', chatBody('free-chat'), wrong)).status).toBe(401);
    // The two refused credentials used up the address's hour: a valid member is limited now too.
    const limited = await post(rig, '/v1/chat/completions', chatBody('free-chat'), { authorization: 'Bearer pk-member' });
    expect(limited.status).toBe(429);
    expect(((await limited.json()) as { error: { code: string; limit: string } }).error).toMatchObject({ code: 'free_model_limit_reached', limit: 'hourly' });
    // A flood past the limit is refused before authentication: still 429, never 401.
    expect((await post(rig, '/v1/chat/completions', chatBody('free-chat'), wrong)).status).toBe(429);
    expect(rig.primary.requests().filter((r) => r.path === '/v1/chat/completions')).toHaveLength(0);
    // Paid models are not free-model traffic: a bad key is 401, a good one is served.
    expect((await post(rig, '/v1/chat/completions', chatBody('chat'), wrong)).status).toBe(401);
    expect((await post(rig, '/v1/chat/completions', chatBody('chat'), { authorization: 'Bearer pk-member' })).status).toBe(200);
  });
});

describe('custom endpoints', () => {
  const loopbackName: Resolver = async () => [{ address: '127.0.0.1', family: 4 }];
  const publicName: Resolver = async () => [{ address: '93.184.216.34', family: 4 }];

  it.each([
    ['http://169.254.169.254/v1', publicName],
    ['http://[::ffff:a9fe:a9fe]/v1', publicName],
    ['http://0x7f.1/v1', publicName],
    ['https://internal.example/v1', loopbackName],
  ])('%s is refused when loopback is not allowed', async (url, resolver) => {
    const result = await checkCustomEndpoint(url, { allowLoopback: false, allowPrivate: false, resolver });
    expect(result).toEqual({ ok: false, reason: 'address_refused' });
  });

  it('metadata stays refused even when loopback and private are allowed; a public name passes', async () => {
    expect(await checkCustomEndpoint('http://169.254.169.254/', { allowLoopback: true, allowPrivate: true, resolver: publicName })).toMatchObject({ ok: false });
    expect(await checkCustomEndpoint('https://api.example.com/v1', { allowLoopback: false, allowPrivate: false, resolver: publicName })).toEqual({ ok: true, url: 'https://api.example.com/v1' });
    expect(await checkCustomEndpoint('https://user:pw@api.example.com/v1', { allowLoopback: false, allowPrivate: false, resolver: publicName })).toEqual({ ok: false, reason: 'credentials_in_url' });
  });
});
