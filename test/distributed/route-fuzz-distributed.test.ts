/**
 * The seeded route fuzz (test/support/route-fuzz.ts) against the built gateway on real PostgreSQL
 * and Redis, whose stores answer bad text and odd keys in their own ways: whatever is sent, the
 * answer is a deliberate one — never a 500, never a stack trace, every refusal in the error shape.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { initDistributedDeployment, type DistributedDeployment } from '../support/distributed-deployment.js';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import { expectOnlyDeliberateAnswers, fuzzRoutes, memberOf, type FuzzTarget } from '../support/route-fuzz.js';

const REQUESTS = 1_200;
const SEED = 20261205;

let deployment: DistributedDeployment;
let gateway: GatewayProcess;
let target: FuzzTarget;

beforeAll(async () => {
  deployment = await initDistributedDeployment('fuzz');
  gateway = await startGatewayProcess(deployment.env, deployment.dir, 90_000);
  target = await memberOf(gateway.url, deployment.adminToken);
}, 180_000);

afterAll(async () => {
  await gateway?.stop();
  await deployment?.remove();
});

describe('every route on Redis + PostgreSQL against schema-derived and bent requests', () => {
  it(`answers ${REQUESTS} of them deliberately: no 500, no stack trace, every refusal in the error shape`, async () => {
    expectOnlyDeliberateAnswers(await fuzzRoutes(target, { seed: SEED, requests: REQUESTS }));
  }, 240_000);
});
