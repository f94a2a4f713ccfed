/**
 * The broker as the composition root builds it: a config file with a `capabilities:` section,
 * startGateway in-process on an embedded store, the bootstrap admin issuing, a container calling
 * through the egress proxy, and a capability used as a `/v1` API key reaching the authenticator.
 */
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../config/errors.js';
import { initConfig } from '../../config/init.js';
import { loadConfig, type LoadedConfig } from '../../config/load.js';
import { createLogger } from '../../core/logger.js';
import { bootstrapAdmin, openStores, startGateway, type BootstrappedAdmin, type RunningGateway } from '../../main.js';
import { resolveCapabilityConfig } from './config.js';
import { UPSTREAM_SECRET, startUpstream, type Upstream } from './testing/harness.js';

const CAPABILITIES_YAML = `
capabilities:
  keys:
    - id: c1
      secret: { file: capability.key }
      createdAt: "2026-01-01T00:00:00Z"
  maxLifetimeMinutes: 30
  devHttpHosts: ["127.0.0.1"]
  trustedHops: ["127.0.0.1"]
  egress: { allowLoopback: true }
  credentials:
    backend:service: { secret: { file: upstream.secret } }
`;

let dir: string;
let loaded: LoadedConfig;
let gateway: RunningGateway;
let admin: BootstrappedAdmin;
let upstream: Upstream;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'portcullis-capabilities-'));
  const { configPath } = initConfig({ dataDir: dir });
  appendFileSync(configPath, CAPABILITIES_YAML);
  writeFileSync(join(dir, 'capability.key'), 'capability-key-material-0123456789abcdef', { mode: 0o600 });
  writeFileSync(join(dir, 'upstream.secret'), UPSTREAM_SECRET, { mode: 0o600 });
  loaded = loadConfig(configPath, { PORTCULLIS_PORT: '0' });
  const stores = await openStores(loaded);
  try {
    const created = await bootstrapAdmin(loaded, stores);
    if (created === null) throw new Error('expected a fresh admin');
    admin = created;
  } finally {
    await stores.close();
  }
  upstream = await startUpstream();
  gateway = await startGateway(loaded, { logger: createLogger({ level: 'silent' }) });
}, 120_000);

afterAll(async () => {
  await gateway?.close();
  await upstream?.close();
});

describe('capabilities wired into the gateway', () => {
  it('issues, proxies with the injected credential, and accepts the capability on /v1 only', async () => {
    const issued = await fetch(`${gateway.url}/api/orgs/${admin.orgId}/capabilities`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        userId: admin.userId,
        sessionId: 'ses_gateway',
        binding: { type: 'container', containerId: 'ctr-gw' },
        grants: [
          { name: 'backend', origin: upstream.origin, methods: ['GET'], pathPrefixes: ['/api/'], credential: { ref: 'backend:service', header: 'x-api-key' }, routeClass: 'backend_api' },
          { name: 'models', origin: 'https://models.example.com', methods: ['POST'], pathPrefixes: ['/v1/'], credential: { ref: 'backend:service', header: 'authorization', scheme: 'Bearer' }, routeClass: 'org_models' },
        ],
      }),
    });
    expect(issued.status).toBe(201);
    const { token, expiresAt } = (await issued.json()) as { token: string; expiresAt: string };
    expect(Date.parse(expiresAt) - Date.now()).toBeLessThanOrEqual(30 * 60 * 1000);

    const proxied = await fetch(`${gateway.url}/egress/backend/api/things`, { headers: { authorization: `Bearer ${token}`, 'x-portcullis-container': 'ctr-gw' } });
    expect(proxied.status).toBe(200);
    expect(await proxied.text()).not.toContain(UPSTREAM_SECRET);
    expect(upstream.seen.at(-1)?.headers['x-api-key']).toBe(UPSTREAM_SECRET);
    expect(upstream.seen.at(-1)?.headers.authorization).toBeUndefined();

    // On the admin API a capability is never a caller.
    const me = await fetch(`${gateway.url}/api/me`, { headers: { authorization: `Bearer ${token}`, 'x-portcullis-container': 'ctr-gw' } });
    expect(me.status).toBe(403);
    expect(((await me.json()) as { error: { code: string } }).error.code).toBe('route_refused');
  });

  it('a capability key secret that does not resolve stops the start, naming the key', () => {
    const section = loaded.config.capabilities;
    if (section === undefined) throw new Error('expected the section');
    const broken = { ...section, keys: [{ ...section.keys[0], id: 'c1', createdAt: '2026-01-01T00:00:00Z', secret: { env: 'PORTCULLIS_TEST_MISSING_CAP_KEY' } }] };
    let problem = '';
    try {
      resolveCapabilityConfig(broken, { baseDir: dir, env: {} });
    } catch (error) {
      if (error instanceof ConfigError) problem = error.problems[0]?.key ?? '';
    }
    expect(problem).toBe('capabilities.keys[0].secret');
  });
});
