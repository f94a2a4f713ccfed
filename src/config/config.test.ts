import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors.js';
import { initConfig } from './init.js';
import { loadConfig, locateConfig } from './load.js';

function freshDir(): string {
  return mkdtempSync(join(tmpdir(), 'portcullis-config-'));
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map((p) => `${p.key}: ${p.problem} | ${p.fix}`);
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration', () => {
  it('init writes a loadable config with private secret files', () => {
    const dir = freshDir();
    const result = initConfig({ dataDir: dir });
    expect(result.createdSecrets).toHaveLength(3);
    for (const path of result.createdSecrets) expect(statSync(path).mode & 0o777).toBe(0o600);
    const loaded = loadConfig(result.configPath, {});
    expect(loaded.config.server.port).toBe(7070);
    expect(loaded.dataDir).toBe(dir);
    expect(loaded.secrets.keySigning.bytes().length).toBeGreaterThanOrEqual(32);
    // A secret never prints its value.
    const value = loaded.secrets.master.bytes().toString();
    expect(JSON.stringify(loaded)).not.toContain(value);
    expect(String(loaded.secrets.master)).not.toContain(value);
  });

  it('init refuses to overwrite and keeps existing secrets with --force', () => {
    const dir = freshDir();
    const first = initConfig({ dataDir: dir });
    const before = readFileSync(first.createdSecrets[0] ?? '', 'utf8');
    expect(problemsOf(() => initConfig({ dataDir: dir }))[0]).toMatch(/already exists/);
    const second = initConfig({ dataDir: dir, force: true });
    expect(second.createdSecrets).toHaveLength(0);
    expect(readFileSync(first.createdSecrets[0] ?? '', 'utf8')).toBe(before);
  });

  it('environment overrides the file', () => {
    const dir = freshDir();
    const { configPath } = initConfig({ dataDir: dir });
    const loaded = loadConfig(configPath, {
      PORTCULLIS_PORT: '9191',
      DATABASE_URL: 'postgres://u@127.0.0.1:5432/x',
      REDIS_URL: 'redis://127.0.0.1:6379',
      PORTCULLIS_DATA_DIR: join(dir, 'elsewhere'),
    });
    expect(loaded.config.server.port).toBe(9191);
    expect(loaded.config.database.url).toBe('postgres://u@127.0.0.1:5432/x');
    expect(loaded.config.redis.url).toBe('redis://127.0.0.1:6379');
    expect(loaded.dataDir).toBe(join(dir, 'elsewhere'));
  });

  it('errors name the key and the fix', () => {
    const dir = freshDir();
    const { configPath } = initConfig({ dataDir: dir });
    expect(problemsOf(() => loadConfig(configPath, { PORTCULLIS_PORT: 'eighty' }))[0]).toMatch(/^PORTCULLIS_PORT: .*integer/);
    const text = readFileSync(configPath, 'utf8');
    writeFileSync(configPath, text.replace('port: 7070', 'port: 70000').replace('logging:', 'colour: blue\nlogging:'));
    const problems = problemsOf(() => loadConfig(configPath, {}));
    expect(problems.some((p) => p.startsWith('server.port:') && p.includes('at most 65535'))).toBe(true);
    expect(problems.some((p) => p.includes('"colour"'))).toBe(true);
  });

  it('server.workers: several gateway processes only on the distributed deployment; the variable is checked', () => {
    const dir = freshDir();
    const { configPath } = initConfig({ dataDir: dir });
    expect(loadConfig(configPath, {}).config.server.workers).toBe(1);
    expect(problemsOf(() => loadConfig(configPath, { PORTCULLIS_WORKERS: '2' }))).toEqual([
      'server.workers: more than one worker process needs the distributed deployment: set database.url and redis.url, or server.workers: 1 | see the configuration reference in README.md',
    ]);
    expect(problemsOf(() => loadConfig(configPath, { PORTCULLIS_WORKERS: 'auto', DATABASE_URL: 'postgres://u@127.0.0.1:5432/x' }))[0]).toMatch(/^server\.workers: more than one/);
    const distributed = { DATABASE_URL: 'postgres://u@127.0.0.1:5432/x', REDIS_URL: 'redis://127.0.0.1:6379' };
    expect(loadConfig(configPath, { ...distributed, PORTCULLIS_WORKERS: '4' }).config.server.workers).toBe(4);
    expect(loadConfig(configPath, { ...distributed, PORTCULLIS_WORKERS: 'auto' }).config.server.workers).toBe('auto');
    for (const bad of ['two', '0', '65', '-1', '1e3']) {
      expect(problemsOf(() => loadConfig(configPath, { ...distributed, PORTCULLIS_WORKERS: bad })).join(' ')).toMatch(/PORTCULLIS_WORKERS|server\.workers/);
    }
  });

  it('one unpriced-model switch: the deprecated budgets.allowUnpricedModels is read as models.allowUnpricedModels with a warning, a conflict is an error', () => {
    const dir = freshDir();
    const { configPath } = initConfig({ dataDir: dir });
    const text = readFileSync(configPath, 'utf8');
    const load = (extra: string) => {
      writeFileSync(configPath, `${text}\n${extra}\n`);
      return loadConfig(configPath, {});
    };
    const plain = load('');
    expect(plain.config.models.allowUnpricedModels).toBe(false);
    expect(plain.warnings).toEqual([]);
    expect(load('models:\n  allowUnpricedModels: true').config.models.allowUnpricedModels).toBe(true);

    const old = load('budgets:\n  allowUnpricedModels: true\n  refreshSeconds: 5');
    expect(old.config.models.allowUnpricedModels).toBe(true);
    expect(old.config.budgets.refreshSeconds).toBe(5);
    expect(old.config.budgets).not.toHaveProperty('allowUnpricedModels');
    expect(old.warnings).toEqual([expect.stringMatching(/^budgets\.allowUnpricedModels is deprecated.*models\.allowUnpricedModels/)]);
    expect(load('budgets:\n  allowUnpricedModels: true\nmodels:\n  allowUnpricedModels: true').config.models.allowUnpricedModels).toBe(true);

    const conflict = problemsOf(() => load('budgets:\n  allowUnpricedModels: true\nmodels:\n  allowUnpricedModels: false'));
    expect(conflict).toEqual([expect.stringMatching(/^budgets\.allowUnpricedModels: conflicts with models\.allowUnpricedModels .*\| remove budgets\.allowUnpricedModels/)]);
    expect(problemsOf(() => load('budgets:\n  allowUnpricedModels: "yes"'))).toEqual([expect.stringMatching(/^budgets\.allowUnpricedModels: must be a boolean/)]);
  });

  it('models.egress.allowHttpHosts keeps bare hosts in the URL parser spelling and refuses anything else', () => {
    const dir = freshDir();
    const { configPath } = initConfig({ dataDir: dir });
    const text = readFileSync(configPath, 'utf8');
    const load = (hosts: string) => {
      writeFileSync(configPath, `${text}\nmodels:\n  egress:\n    allowHttpHosts: ${hosts}\n`);
      return loadConfig(configPath, {});
    };
    expect(load('[]').config.models.egress).toEqual({ allowLoopback: false, allowPrivate: false, allowHttpHosts: [] });
    expect(load('["vLLM.Local", "0x7f.1", "[::1]"]').config.models.egress.allowHttpHosts).toEqual(['vllm.local', '127.0.0.1', '[::1]']);
    for (const bad of ['"http://vllm.local"', '"vllm.local:8000"', '"vllm.local/v1"', '"user@vllm.local"', '"::1"', '""']) {
      expect(problemsOf(() => load(`[${bad}]`)).some((p) => p.startsWith('models.egress.allowHttpHosts[0]: ')), bad).toBe(true);
    }
  });

  it('a missing or short secret stops loading and names the reference, not a value', () => {
    const dir = freshDir();
    const { configPath } = initConfig({ dataDir: dir });
    const text = readFileSync(configPath, 'utf8').replace(/keySigning: \{ file: [^}]+\}/, 'keySigning: { env: PC_SIGNING }');
    writeFileSync(configPath, text);
    expect(problemsOf(() => loadConfig(configPath, {}))[0]).toMatch(/^secrets\.keySigning: environment variable PC_SIGNING is not set/);
    expect(problemsOf(() => loadConfig(configPath, { PC_SIGNING: 'short-secret-value' }))[0]).toMatch(/fewer than 32 bytes/);
    const problems = problemsOf(() => loadConfig(configPath, { PC_SIGNING: 'short-secret-value' })).join('\n');
    expect(problems).not.toContain('short-secret-value');
  });

  it('invalid YAML is a config error with the position', () => {
    const dir = freshDir();
    const path = join(dir, 'portcullis.yaml');
    writeFileSync(path, 'server: [unclosed');
    expect(problemsOf(() => loadConfig(path, {}))[0]).toMatch(/not valid YAML/);
  });

  it('locates the config from the flag, the environment, the working folder, or none on a first run', () => {
    const dir = freshDir();
    expect(locateConfig({ env: { PORTCULLIS_DATA_DIR: join(dir, 'data') }, cwd: dir })).toBeNull();
    const { configPath } = initConfig({ dataDir: join(dir, 'data') });
    expect(locateConfig({ env: { PORTCULLIS_DATA_DIR: join(dir, 'data') }, cwd: dir })).toBe(configPath);
    expect(locateConfig({ env: { PORTCULLIS_CONFIG: configPath }, cwd: '/' })).toBe(configPath);
    expect(problemsOf(() => locateConfig({ env: { PORTCULLIS_CONFIG: join(dir, 'nope.yaml') }, cwd: dir }))[0]).toMatch(/^PORTCULLIS_CONFIG: no file/);
  });
});
