/**
 * Every route of the embedded gateway against the seeded route fuzz (test/support/route-fuzz.ts):
 * whatever is sent, the answer is a deliberate one — never a 500, never a stack trace, and every
 * refusal in the one JSON error shape.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { startSimulator, type Simulator } from '../../bench/simulator/index.js';
import { createLogger } from '../../src/core/logger.js';
import { startGateway, type RunningGateway } from '../../src/main.js';
import { freshEmbeddedDeployment } from '../support/embedded-deployment.js';
import { expectOnlyDeliberateAnswers, fuzzRoutes, memberOf, type FuzzTarget } from '../support/route-fuzz.js';

const REQUESTS = 1_200;
const SEED = 20261204;

let sim: Simulator;
let gateway: RunningGateway | undefined;
let target: FuzzTarget;

beforeAll(async () => {
  sim = await startSimulator();
  const deployment = await freshEmbeddedDeployment(`
models:
  egress: { allowLoopback: true }
  providers:
    - { id: sim, kind: openai_compatible, baseUrl: "${sim.url}/v1", timeoutMs: 5000 }
  models:
    - { alias: sim-chat, provider: sim, upstreamModel: sim-chat, price: { inputPerMTok: 1000000, outputPerMTok: 2000000 }, maxOutputTokens: 200 }
    - { alias: free-chat, provider: sim, upstreamModel: sim-chat, free: true, maxOutputTokens: 200 }
`);
  gateway = await startGateway(deployment.loaded, { logger: createLogger({ level: 'silent' }) });
  target = await memberOf(gateway.url, deployment.admin.token);
}, 180_000);

afterAll(async () => {
  await gateway?.close();
  await sim?.close();
});

describe('every route against schema-derived and bent requests', () => {
  it(`answers ${REQUESTS} of them deliberately: no 500, no stack trace, every refusal in the error shape`, async () => {
    expectOnlyDeliberateAnswers(await fuzzRoutes(target, { seed: SEED, requests: REQUESTS }));
  }, 240_000);
});
