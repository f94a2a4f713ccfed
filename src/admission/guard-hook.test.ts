import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ManualClock } from '../core/clock.js';
import { createTestHttpApp, testPrincipal } from '../http/testing.js';
import { defineRoute } from '../http/route.js';
import { MemoryHotState } from '../store/state/memory/memory-hot-state.js';
import { registerAdmissionGuardHook } from './guard-hook.js';
import { createPipeline } from './pipeline.js';
import { testAdmissionConfig } from './testing.js';

function setup() {
  const state = new MemoryHotState({ clock: new ManualClock() });
  const config = testAdmissionConfig({ routes: { guard: ['^/api/exports$'], bypass: [] } });
  const pipeline = createPipeline({ state, config: () => config, limits: () => ({ burst: 2, burstWindowSeconds: 60, hourly: null }) });
  const { app, registry } = createTestHttpApp({ principals: { member: testPrincipal({ userId: 'usr_1', orgId: 'org_1' }) } });
  for (const url of ['/api/exports', '/api/plain']) {
    defineRoute(app, registry, { method: 'GET', url, summary: 'test', auth: 'required', query: z.object({}), handler: async () => ({ ok: true }) });
  }
  // Registered after the routes, as the composition root does.
  registerAdmissionGuardHook(app, pipeline);
  return { app, pipeline };
}

describe('admission guard hook', () => {
  it('guards configured routes with 429, Retry-After and RateLimit headers, and frees the slot after each response', async () => {
    const { app, pipeline } = setup();
    const headers = { authorization: 'Bearer member' };
    const answers = [];
    for (let i = 0; i < 3; i += 1) answers.push(await app.inject({ method: 'GET', url: '/api/exports', headers }));
    expect(answers.map((a) => a.statusCode)).toEqual([200, 200, 429]);
    expect(answers[0]?.headers['ratelimit-policy']).toBe('"burst";q=2;w=60');
    const refused = answers[2];
    expect(refused?.headers['retry-after']).toBe('60');
    expect(refused?.headers.ratelimit).toBe('"burst";r=0;t=60');
    expect(refused?.json()).toMatchObject({ error: { code: 'rate_limited', gate: 'rate_limit', limit_window: 'burst', limit_limit: 2 } });
    expect(pipeline.slots.held).toBe(0);
  });

  it('leaves authenticate-only routes alone', async () => {
    const { app } = setup();
    const headers = { authorization: 'Bearer member' };
    for (let i = 0; i < 5; i += 1) expect((await app.inject({ method: 'GET', url: '/api/plain', headers })).statusCode).toBe(200);
  });
});
