/**
 * A fresh embedded deployment for in-process gateway tests: the starter config `portcullis init`
 * writes plus the test's own YAML (and any secret files it names), migrated stores, and the first
 * platform admin with its org. The caller starts it with startGateway.
 */
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initConfig } from '../../src/config/init.js';
import { loadConfig, type LoadedConfig } from '../../src/config/load.js';
import { bootstrapAdmin, openStores, type BootstrappedAdmin } from '../../src/main.js';

export interface EmbeddedDeployment {
  loaded: LoadedConfig;
  admin: BootstrappedAdmin;
}

/** `files`: name → content, written next to the config with mode 0600 before it is loaded. */
export async function freshEmbeddedDeployment(yaml: string, files: Record<string, string> = {}): Promise<EmbeddedDeployment> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-embedded-'));
  const { configPath } = initConfig({ dataDir: dir });
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content, { mode: 0o600 });
  appendFileSync(configPath, yaml);
  const loaded = loadConfig(configPath, { PORTCULLIS_PORT: '0' });
  const stores = await openStores(loaded);
  try {
    const admin = await bootstrapAdmin(loaded, stores);
    if (admin === null) throw new Error('expected a fresh admin');
    return { loaded, admin };
  } finally {
    await stores.close();
  }
}
