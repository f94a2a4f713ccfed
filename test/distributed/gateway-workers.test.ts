/**
 * `server.workers: 2` on real Redis and PostgreSQL: one `portcullis start` supervises two gateway
 * processes on one port; both serve, a worker that dies is replaced while the other keeps
 * answering, rate limits stay exact across them, and SIGTERM drains and stops every process.
 */
import { appendFileSync } from 'node:fs';
import { get } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childPids } from '../../bench/gateway-process.js';
import { guardedMeYaml } from '../support/admission-yaml.js';
import { initDistributedDeployment, type DistributedDeployment } from '../support/distributed-deployment.js';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';

const ADMISSION_YAML = guardedMeYaml(40);

/**
 * A GET on a new connection, tried up to three times: a kept-alive connection, or one the
 * supervisor hands to a worker at the moment it dies, is lost with that worker — a client retries,
 * and so does this.
 */
async function freshGet(url: string): Promise<number> {
  const once = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const request = get(url, { agent: false, timeout: 2000 }, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      request.on('timeout', () => request.destroy(new Error('no answer within 2 s')));
      request.on('error', reject);
    });
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await once();
    } catch (error) {
      if (attempt === 3) throw error;
    }
  }
}

async function until(check: () => boolean, withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${withinMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('one start, two worker processes', () => {
  let deployment: DistributedDeployment;
  let gateway: GatewayProcess;
  let token: string;

  beforeAll(async () => {
    deployment = await initDistributedDeployment('workers');
    token = deployment.adminToken;
    appendFileSync(deployment.configPath, ADMISSION_YAML);
    gateway = await startGatewayProcess({ ...deployment.env, PORTCULLIS_WORKERS: '2' }, deployment.dir, 120_000);
  }, 180_000);

  afterAll(async () => {
    await gateway?.stop();
    await deployment?.remove();
  });

  it('announces the shared port once both workers listen, and runs them under the supervisor', async () => {
    expect(gateway.output()).toMatch(/listening on http:\/\/\S+ \(2 worker processes\)/);
    const pid = gateway.child.pid ?? -1;
    expect(childPids(pid)).toHaveLength(2);
    const answers = await Promise.all(Array.from({ length: 20 }, () => fetch(new URL('/readyz', gateway.url))));
    expect(answers.every((a) => a.status === 200)).toBe(true);
  });

  it('keeps limits exact across the workers: 200 concurrent requests with a burst of 40 admit exactly 40', async () => {
    const answers = await Promise.all(Array.from({ length: 200 }, () => fetch(new URL('/api/me', gateway.url), { headers: { authorization: `Bearer ${token}` } })));
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(40);
    expect(statuses.filter((s) => s === 429)).toHaveLength(160);
  });

  it('replaces a worker that dies while the other keeps answering', async () => {
    const pid = gateway.child.pid ?? -1;
    const [victim, survivor] = childPids(pid);
    if (victim === undefined || survivor === undefined) throw new Error('expected two workers');
    process.kill(victim, 'SIGKILL');
    for (let i = 0; i < 10; i += 1) expect(await freshGet(new URL('/healthz', gateway.url).toString())).toBe(200);
    await until(() => {
      const now = childPids(pid);
      return now.length === 2 && !now.includes(victim) && now.includes(survivor);
    }, 30_000);
    expect(gateway.output()).toContain(`worker ${victim} exited (SIGKILL)`);
  }, 60_000);

  it('SIGTERM drains every worker and ends the supervisor', async () => {
    const pid = gateway.child.pid ?? -1;
    const workers = childPids(pid);
    expect(workers).toHaveLength(2);
    expect(await gateway.stop()).toBe(0);
    for (const worker of workers) expect(() => process.kill(worker, 0)).toThrow();
  }, 60_000);
});
