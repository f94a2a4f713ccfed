/**
 * What one replica changes, the other uses or drops within 1 s: an org's own provider key (BYOK)
 * and an org's custom endpoints, set through replica A's admin API and called through replica B.
 * Run with one in-process hot state (test/models) and with two real Redis connections and two
 * PostgreSQL pools (test/distributed). The pub/sub messages carry ids only, never key material.
 */
import OpenAI, { type APIError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../bench/simulator/index.js';
import type { Resolver } from '../../src/egress/index.js';
import { CUSTOM_ENDPOINTS_CHANNEL, PROVIDER_KEYS_CHANNEL } from '../../src/models/index.js';
import type { RecordStore } from '../../src/store/db/index.js';
import type { HotState } from '../../src/store/state/index.js';
import { MANAGED_KEY, ORG_ID, startRig, type Rig } from './harness.js';

export interface ReplicaStores {
  store: RecordStore;
  state: HotState;
}

export interface Deployment {
  a: ReplicaStores;
  b: ReplicaStores;
  close(): Promise<void>;
}

const PROPAGATION_MS = 1000;
const ORG_KEY = 'sk-org-byok-key-MUST-NOT-BE-PUBLISHED-5150';
const ENDPOINT_KEY = 'sk-org-endpoint-key-MUST-NOT-BE-PUBLISHED-6160';
const dns: Resolver = async (host) => {
  if (host === 'sim.test') return [{ address: '127.0.0.1', family: 4 }];
  throw new Error('no such host');
};

/** Polls `check` until it holds; fails unless it does within the propagation budget. Returns the ms it took. */
async function within(check: () => Promise<boolean>): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > PROPAGATION_MS) throw new Error(`not seen within ${PROPAGATION_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return performance.now() - started;
}

export function describeReplicaInvalidation(name: string, deploy: () => Promise<Deployment>): void {
  describe(`two replicas (${name}): changes reach the other replica within 1 s`, () => {
    let deployment: Deployment;
    let a: Rig;
    let b: Rig;
    let orgServer: Simulator;
    const published: { channel: string; message: string }[] = [];

    beforeAll(async () => {
      deployment = await deploy();
      orgServer = await startSimulator({ apiKey: ENDPOINT_KEY });
      const egress = { allowLoopback: true, allowHttpHosts: ['sim.test'] };
      a = await startRig({ ...deployment.a, primary: {}, egress, dns });
      b = await startRig({ ...deployment.b, primary: {}, egress, dns });
      for (const channel of [PROVIDER_KEYS_CHANNEL, CUSTOM_ENDPOINTS_CHANNEL]) await deployment.b.state.subscribe(channel, (message) => published.push({ channel, message }));
    }, 180_000);

    afterAll(async () => {
      await a?.close();
      await b?.close();
      await orgServer?.close();
      await deployment?.close();
    });

    function admin(rig: Rig, method: string, path: string, body?: unknown): Promise<Response> {
      return fetch(`${rig.url}${path}`, { method, headers: { authorization: 'Bearer pk-admin', ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    }

    async function chat(rig: Rig, model: string): Promise<number> {
      const client = new OpenAI({ apiKey: 'pk-member', baseURL: `${rig.url}/v1`, maxRetries: 0 });
      return client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] }).then(
        () => 200,
        (error: unknown) => (error as APIError).status ?? 0,
      );
    }

    /** The credential replica B's next call to the catalogue model sends upstream. */
    async function keySentByB(): Promise<string | undefined> {
      expect(await chat(b, 'chat')).toBe(200);
      return String(b.primary.lastRequest()?.headers.authorization);
    }

    it('an org provider key set on A is used by B, and removed on A is dropped by B', async () => {
      expect(await keySentByB()).toBe(`Bearer ${MANAGED_KEY}`);
      expect((await admin(a, 'PUT', `/api/orgs/${ORG_ID}/providers/sim/key`, { apiKey: ORG_KEY })).status).toBe(204);
      await within(async () => (await keySentByB()) === `Bearer ${ORG_KEY}`);
      expect((await admin(a, 'DELETE', `/api/orgs/${ORG_ID}/providers/sim/key`)).status).toBe(204);
      await within(async () => (await keySentByB()) === `Bearer ${MANAGED_KEY}`);
      const messages = published.filter((m) => m.channel === PROVIDER_KEYS_CHANNEL).map((m) => m.message);
      expect(messages).toEqual([`${ORG_ID}\nsim`, `${ORG_ID}\nsim`]);
    });

    it('a custom endpoint created, changed and removed on A is served, re-routed and refused by B', async () => {
      const endpoint = (upstream: string) => ({ baseUrl: `http://sim.test:${orgServer.port}/v1`, apiKey: ENDPOINT_KEY, models: [{ alias: 'org-chat', upstream, price: { inputPerMTok: 1, outputPerMTok: 1 } }] });
      expect(await chat(b, 'org-chat')).toBe(404);
      expect((await admin(a, 'PUT', `/api/orgs/${ORG_ID}/endpoints/own`, endpoint('sim-chat'))).status).toBe(204);
      await within(async () => (await chat(b, 'org-chat')) === 200);
      expect(orgServer.lastRequest()?.headers.authorization).toBe(`Bearer ${ENDPOINT_KEY}`);
      expect((await admin(a, 'PUT', `/api/orgs/${ORG_ID}/endpoints/own`, endpoint('sim-chat-large'))).status).toBe(204);
      await within(async () => (await chat(b, 'org-chat')) === 200 && (orgServer.lastRequest()?.body as { model?: string } | undefined)?.model === 'sim-chat-large');
      expect((await admin(a, 'DELETE', `/api/orgs/${ORG_ID}/endpoints/own`)).status).toBe(204);
      await within(async () => (await chat(b, 'org-chat')) === 404);
      expect(published.filter((m) => m.channel === CUSTOM_ENDPOINTS_CHANNEL).map((m) => m.message)).toEqual([ORG_ID, ORG_ID, ORG_ID]);
    });

    it('no published message carries key material', () => {
      expect(published.length).toBeGreaterThan(0);
      for (const { message } of published) {
        expect(message).not.toContain(ORG_KEY);
        expect(message).not.toContain(ENDPOINT_KEY);
        expect(message).not.toContain('sk-');
      }
    });
  });
}
