/**
 * `portcullis init`: writes a starter configuration with freshly generated secrets. The secrets go
 * to files of mode 0600 next to the config, referenced by path; their values are never printed.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CONFIG_FILE_NAME } from './load.js';
import { ConfigError } from './errors.js';

export interface InitOptions {
  dataDir: string;
  /** Overwrite an existing config. Secrets that already exist are kept either way. */
  force?: boolean;
  port?: number;
}

export interface InitResult {
  configPath: string;
  dataDir: string;
  createdSecrets: string[];
}

const SECRET_FILES = { keySigning: 'key-signing.key', master: 'master.key', audit: 'audit.key' } as const;

function starterConfig(port: number): string {
  return `# Portcullis configuration, written by \`portcullis init\`.
# Every key is documented in README.md (Configuration reference). Environment variables
# PORTCULLIS_PORT, PORTCULLIS_HOST, PORTCULLIS_DATA_DIR, DATABASE_URL, REDIS_URL and
# PORTCULLIS_LOG_LEVEL override what is written here.
server:
  host: 127.0.0.1
  port: ${port}
  trustedProxies: []
  behindTls: false
# Relative to this file's folder.
dataDir: .
# Embedded PGlite under dataDir unless a PostgreSQL URL is given (or DATABASE_URL).
database: {}
# In-memory hot state unless a Redis URL is given (or REDIS_URL).
redis: {}
# Secrets are references, never values: { file: path } or { env: VARIABLE }.
secrets:
  keySigning: { file: ./secrets/${SECRET_FILES.keySigning} }
  master: { file: ./secrets/${SECRET_FILES.master} }
  audit: { file: ./secrets/${SECRET_FILES.audit} }
keys:
  defaultTtlDays: 30
  maxTtlDays: 90
logging:
  level: info
`;
}

export function initConfig(options: InitOptions): InitResult {
  const dataDir = resolve(options.dataDir);
  const configPath = join(dataDir, CONFIG_FILE_NAME);
  if (existsSync(configPath) && options.force !== true) {
    throw ConfigError.single('init', `a configuration already exists at ${configPath}`, 'use it (`portcullis start`), or pass --force to rewrite it');
  }
  const secretsDir = join(dataDir, 'secrets');
  mkdirSync(secretsDir, { recursive: true, mode: 0o700 });
  const createdSecrets: string[] = [];
  for (const file of Object.values(SECRET_FILES)) {
    const path = join(secretsDir, file);
    if (existsSync(path)) continue;
    writeFileSync(path, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    createdSecrets.push(path);
  }
  writeFileSync(configPath, starterConfig(options.port ?? 7070), { mode: 0o600 });
  return { configPath, dataDir, createdSecrets };
}
