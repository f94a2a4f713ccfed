/**
 * The newcomer's path, end to end: the built CLI started in an empty folder initialises the
 * embedded default, serves /readyz, hands out the admin credential through a 0600 file only, and
 * the admin commands, the HTTP surface and `audit verify` all work against it.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRecordStore } from '../../src/store/db/index.js';
import { runCli, startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';

const START_TIMEOUT_MS = 120_000;

interface Json {
  [key: string]: unknown;
}

async function call(url: string, path: string, init: RequestInit = {}, token?: string): Promise<{ status: number; headers: Headers; body: Json }> {
  const headers = new Headers(init.headers);
  if (token !== undefined) headers.set('authorization', `Bearer ${token}`);
  if (init.body !== undefined) headers.set('content-type', 'application/json');
  const response = await fetch(new URL(path, url), { ...init, headers });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? {} : (JSON.parse(text) as Json) };
}

describe('embedded deployment through the built CLI', () => {
  let cwd: string;
  let gateway: GatewayProcess;
  let adminToken: string;

  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'portcullis-e2e-'));
    // At the default log level, as operators run it: audit checkpoints are published at info.
    gateway = await startGatewayProcess({ PORTCULLIS_LOG_LEVEL: 'info' }, cwd, START_TIMEOUT_MS);
  }, START_TIMEOUT_MS + 10_000);

  afterAll(async () => {
    await gateway.stop();
    rmSync(cwd, { recursive: true, force: true });
  });

  it('answers /readyz with 200 on an empty data folder', async () => {
    const ready = await call(gateway.url, '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toEqual({ recordStore: 'ok', hotState: 'ok' });
  });

  it('writes the admin credential once, to a 0600 file, and never prints it', () => {
    const credentialPath = join(cwd, 'data', 'admin-credential.txt');
    expect(statSync(credentialPath).mode & 0o777).toBe(0o600);
    const match = /PORTCULLIS_TOKEN=(pck_[^\s]+)/.exec(readFileSync(credentialPath, 'utf8'));
    expect(match?.[1]).toBeDefined();
    adminToken = match?.[1] ?? '';
    expect(gateway.output()).toContain(credentialPath);
    expect(gateway.output()).not.toContain(adminToken);
    expect(gateway.output()).not.toContain('pck_');
  });

  it('knows who is calling', async () => {
    const me = await call(gateway.url, '/api/me', {}, adminToken);
    expect(me.status).toBe(200);
    expect(JSON.stringify(me.body)).toContain('usr_');
    expect((await call(gateway.url, '/api/me')).body).toMatchObject({ error: { code: 'unauthenticated' } });
    const malformed = await call(gateway.url, '/api/me', { headers: { authorization: 'Bearer pck_not.a.key' } });
    expect(malformed.status).toBe(401);
    expect(malformed.body).toMatchObject({ error: { code: 'invalid_token' } });
    const basic = await call(gateway.url, '/api/me', { headers: { authorization: 'Basic Zm9vOmJhcg==' } });
    expect(basic.status).toBe(401);
  });

  it('serves the HTTP surface: headers, error shape, limits, OpenAPI, metrics', async () => {
    const missing = await call(gateway.url, '/nope');
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ error: { code: 'not_found', message: 'Not found.' } });
    expect(missing.headers.get('x-content-type-options')).toBe('nosniff');
    expect(missing.headers.get('x-frame-options')).toBe('DENY');
    expect(missing.headers.get('referrer-policy')).toBe('no-referrer');
    expect(missing.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    expect(missing.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(missing.headers.get('x-request-id')).toMatch(/^req_/);
    expect(missing.headers.get('strict-transport-security')).toBeNull();

    const huge = await call(gateway.url, '/api/orgs', { method: 'POST', body: JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024) }) }, adminToken);
    expect(huge.status).toBe(413);
    expect(huge.body).toMatchObject({ error: { code: 'payload_too_large' } });
    const badJson = await call(gateway.url, '/api/orgs', { method: 'POST', body: '{"name":' }, adminToken);
    expect(badJson.status).toBe(400);
    expect(badJson.body).toMatchObject({ error: { code: 'bad_request' } });

    const openapi = await call(gateway.url, '/openapi.json');
    expect(openapi.status).toBe(200);
    expect(Object.keys(openapi.body.paths as Json)).toEqual(expect.arrayContaining(['/api/orgs', '/api/orgs/{orgId}/keys', '/api/auth/login', '/api/me']));
    const metrics = await fetch(new URL('/metrics', gateway.url));
    expect(await metrics.text()).toContain('portcullis_http_requests_total');
  });

  it('drives orgs, users, members and keys through the admin commands', async () => {
    const env = { PORTCULLIS_URL: gateway.url, PORTCULLIS_TOKEN: adminToken };
    const org = await runCli(['orgs', 'create', 'Acme', '--json'], env);
    expect(org.code, org.stderr).toBe(0);
    const orgId = (JSON.parse(org.stdout) as { id: string }).id;
    const user = await runCli(['users', 'create', 'dev@acme.test', '--type', 'paid', '--json'], env);
    expect(user.code, user.stderr).toBe(0);
    const userId = (JSON.parse(user.stdout) as { id: string }).id;
    const added = await runCli(['members', 'add', orgId, userId, '--role', 'member', '--json'], env);
    expect(added.code, added.stderr).toBe(0);

    const created = await runCli(['keys', 'create', orgId, '--name', 'ci', '--json'], env);
    expect(created.code, created.stderr).toBe(0);
    const { key, token } = JSON.parse(created.stdout) as { key: { id: string }; token: string };
    expect((await call(gateway.url, '/api/me', {}, token)).status).toBe(200);

    const table = await runCli(['keys', 'list', orgId], env);
    expect(table.code).toBe(0);
    expect(table.stdout).toContain(key.id);
    expect(table.stdout).not.toContain(token);

    expect((await runCli(['keys', 'revoke', orgId, key.id], env)).code).toBe(0);
    const refused = await call(gateway.url, '/api/me', {}, token);
    expect(refused.status).toBe(401);
    expect(refused.body).toMatchObject({ error: { code: 'token_revoked' } });

    const failing = await runCli(['orgs', 'get', 'org_AAAAAAAAAAAAAAAA'], env);
    expect(failing.code).not.toBe(0);
    expect(failing.stderr).toMatch(/404 not_found/);
    const noToken = await runCli(['orgs', 'list'], { PORTCULLIS_URL: gateway.url });
    expect(noToken.code).not.toBe(0);
    expect(noToken.stderr).toMatch(/no admin token/);
  }, 180_000);

  it('shuts down gracefully, verifies the audit chain, and detects tampering', async () => {
    expect(await gateway.stop()).toBe(0);
    const env = { PORTCULLIS_DATA_DIR: join(cwd, 'data') };
    const verified = await runCli(['audit', 'verify'], env, cwd);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(/verified/i);

    // The checkpoint sealed at shutdown was published in the gateway's log: an anchor outside the database.
    const published = gateway.output().split('\n').filter((line) => line.includes('audit checkpoint signed'));
    expect(published.length).toBeGreaterThan(0);
    const anchorPath = join(cwd, 'anchor.json');
    writeFileSync(anchorPath, published.at(-1) ?? '');
    const anchored = await runCli(['audit', 'verify', '--anchor', anchorPath], env, cwd);
    expect(anchored.code, anchored.stderr).toBe(0);
    expect(anchored.stdout).toContain('It still holds the anchor');
    const unreadable = await runCli(['audit', 'verify', '--anchor', join(cwd, 'no-such-anchor.json')], env, cwd);
    expect(unreadable.code).toBe(2);
    expect(unreadable.stderr).toMatch(/cannot be read \(ENOENT\)/);

    const store = await openRecordStore({ dataDir: join(cwd, 'data'), migrate: false });
    // The last record deleted with its checkpoint: only the anchor can tell.
    const head = await store.db.selectFrom('audit_log').select('seq').orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();
    await store.db.deleteFrom('audit_log').where('seq', '=', head.seq).execute();
    await store.db.deleteFrom('audit_checkpoints').where('seq', '>=', head.seq).execute();
    await store.close();
    expect((await runCli(['audit', 'verify'], env, cwd)).code).toBe(0);
    const cut = await runCli(['audit', 'verify', '--anchor', anchorPath], env, cwd);
    expect(cut.code).toBe(1);
    expect(cut.stderr).toContain(`record ${String(head.seq)} (truncated)`);

    const reopened = await openRecordStore({ dataDir: join(cwd, 'data'), migrate: false });
    const victim = await reopened.db.selectFrom('audit_log').select('seq').orderBy('seq').offset(1).limit(1).executeTakeFirstOrThrow();
    await reopened.db.updateTable('audit_log').set({ actor: 'someone-else' }).where('seq', '=', victim.seq).execute();
    await reopened.close();
    const tampered = await runCli(['audit', 'verify'], env, cwd);
    expect(tampered.code).toBe(1);
    expect(tampered.stderr).toContain(String(victim.seq));
  }, 120_000);

  it('does not mint a second admin credential on restart', async () => {
    const credentialPath = join(cwd, 'data', 'admin-credential.txt');
    rmSync(credentialPath);
    gateway = await startGatewayProcess({}, cwd, START_TIMEOUT_MS);
    expect((await call(gateway.url, '/readyz')).status).toBe(200);
    expect(existsSync(credentialPath)).toBe(false);
    expect((await call(gateway.url, '/api/me', {}, adminToken)).status).toBe(200);
  }, START_TIMEOUT_MS);
});
