/**
 * A fresh distributed deployment for tests that run the built CLI: a throwaway PostgreSQL database,
 * a Redis key prefix of its own, and a data folder that `portcullis init` prepared (config written,
 * stores migrated, first platform admin made). The caller starts its gateways with `env` and `dir`,
 * and calls `remove()` afterwards.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './gateway-process.js';
import { createTempDatabase } from './postgres.js';
import { deletePrefix, REDIS_URL } from './redis.js';

export interface DistributedDeployment {
  /** The data folder, holding `portcullis.yaml`. */
  dir: string;
  configPath: string;
  /** DATABASE_URL, REDIS_URL, PORTCULLIS_REDIS_PREFIX and PORTCULLIS_CONFIG for `portcullis start`. */
  env: Record<string, string>;
  /** The bootstrap credential `init` printed once. */
  adminToken: string;
  remove(): Promise<void>;
}

/** `initEnv`: more environment for the `init` run alone (e.g. a clock offset). */
export async function initDistributedDeployment(name: string, initEnv: Record<string, string> = {}): Promise<DistributedDeployment> {
  const database = await createTempDatabase();
  const dir = mkdtempSync(join(tmpdir(), `portcullis-${name}-`));
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const configPath = join(dir, 'portcullis.yaml');
  const remove = async (): Promise<void> => {
    await database.drop();
    await deletePrefix(prefix);
    rmSync(dir, { recursive: true, force: true });
  };
  const env = { DATABASE_URL: database.url, REDIS_URL, PORTCULLIS_REDIS_PREFIX: prefix, PORTCULLIS_CONFIG: configPath };
  const init = await runCli(['init', '--data-dir', dir], { ...env, PORTCULLIS_CONFIG: '', ...initEnv });
  const adminToken = /(pck_[^\s]+)/.exec(init.stdout)?.[1];
  if (init.code !== 0 || adminToken === undefined) {
    await remove();
    throw new Error(`portcullis init failed (exit ${String(init.code)}): ${init.stderr.slice(-500)}`);
  }
  return { dir, configPath, env, adminToken, remove };
}
