/**
 * Loads the configuration: one YAML file, then environment overrides, then validation. Errors name
 * the key (or the environment variable) and the fix. Secrets are resolved here, once.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { applyDeprecatedKeys } from './deprecated.js';
import { ConfigError, type ConfigProblem } from './errors.js';
import { configSchema, type PortcullisConfig } from './schema.js';
import { resolveSecret, type Secret } from './secrets.js';
import { issueMessage, issuePath, quoteKey } from '../core/issues.js';

export const CONFIG_FILE_NAME = 'portcullis.yaml';
const MAX_CONFIG_BYTES = 1024 * 1024;

export interface ResolvedSecrets {
  keySigning: Secret;
  master: Secret;
  audit: Secret;
}

export interface LoadedConfig {
  config: PortcullisConfig;
  /** The file read. */
  path: string;
  /** Absolute data folder (relative paths in the file are relative to the file's folder). */
  dataDir: string;
  secrets: ResolvedSecrets;
  /** Deprecated keys that were accepted under their new name; the gateway logs each at start. */
  warnings: readonly string[];
}

export interface LocateOptions {
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** An explicit --config flag; wins over everything. */
  explicitPath?: string;
}

/** Where the config file is, or null on a first run with none anywhere. */
export function locateConfig(options: LocateOptions): string | null {
  const explicit = options.explicitPath ?? options.env.PORTCULLIS_CONFIG;
  if (explicit !== undefined && explicit !== '') {
    const path = resolve(options.cwd, explicit);
    if (!existsSync(path)) {
      throw ConfigError.single(options.explicitPath === undefined ? 'PORTCULLIS_CONFIG' : '--config', `no file at ${path}`, 'fix the path, or run `portcullis init` to write one');
    }
    return path;
  }
  for (const candidate of [resolve(options.cwd, CONFIG_FILE_NAME), resolve(defaultDataDir(options), CONFIG_FILE_NAME)]) {
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

export function defaultDataDir(options: { env: NodeJS.ProcessEnv; cwd: string }): string {
  return resolve(options.cwd, options.env.PORTCULLIS_DATA_DIR ?? './data');
}

function readYaml(path: string): Record<string, unknown> {
  const text = readFileSync(path, 'utf8');
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) throw ConfigError.single(path, 'file larger than 1 MiB', 'trim the file');
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    const detail = error instanceof Error ? error.message.split('\n')[0] : 'parse error';
    throw ConfigError.single(path, `not valid YAML (${detail})`, 'fix the YAML syntax at the position given');
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw ConfigError.single(path, 'the top level must be a mapping', 'write `key: value` pairs at the top level');
  return parsed as Record<string, unknown>;
}

function section(raw: Record<string, unknown>, name: string): Record<string, unknown> {
  const value = raw[name];
  const copy = typeof value === 'object' && value !== null && !Array.isArray(value) ? { ...(value as Record<string, unknown>) } : {};
  raw[name] = copy;
  return copy;
}

/** Environment variables win over the file. Each is checked here so its error names the variable. */
export function applyEnvOverrides(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  const port = env.PORTCULLIS_PORT;
  if (port !== undefined && port !== '') {
    if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) throw ConfigError.single('PORTCULLIS_PORT', `"${port}" is not a port number`, 'set it to an integer between 0 and 65535');
    section(raw, 'server').port = Number(port);
  }
  if (env.PORTCULLIS_HOST !== undefined && env.PORTCULLIS_HOST !== '') section(raw, 'server').host = env.PORTCULLIS_HOST;
  const workers = env.PORTCULLIS_WORKERS;
  if (workers !== undefined && workers !== '') {
    if (workers !== 'auto' && !/^\d{1,2}$/.test(workers)) throw ConfigError.single('PORTCULLIS_WORKERS', `"${workers.slice(0, 20)}" is not a worker count`, 'set it to a whole number from 1 to 64, or auto');
    section(raw, 'server').workers = workers === 'auto' ? 'auto' : Number(workers);
  }
  // A data folder from the environment is relative to where the command runs, not to the file.
  if (env.PORTCULLIS_DATA_DIR !== undefined && env.PORTCULLIS_DATA_DIR !== '') raw.dataDir = resolve(env.PORTCULLIS_DATA_DIR);
  if (env.DATABASE_URL !== undefined && env.DATABASE_URL !== '') section(raw, 'database').url = env.DATABASE_URL;
  if (env.REDIS_URL !== undefined && env.REDIS_URL !== '') section(raw, 'redis').url = env.REDIS_URL;
  if (env.PORTCULLIS_REDIS_PREFIX !== undefined && env.PORTCULLIS_REDIS_PREFIX !== '') section(raw, 'redis').prefix = env.PORTCULLIS_REDIS_PREFIX;
  if (env.PORTCULLIS_LOG_LEVEL !== undefined && env.PORTCULLIS_LOG_LEVEL !== '') section(raw, 'logging').level = env.PORTCULLIS_LOG_LEVEL;
}

function fixFor(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'unrecognized_keys':
      return `remove ${issue.keys.map(quoteKey).join(', ')} or check the spelling against the configuration reference in README.md`;
    case 'invalid_type':
      return `set it to a ${issue.expected}`;
    case 'too_small':
      return `use a value of at least ${String(issue.minimum)}`;
    case 'too_big':
      return `use a value of at most ${String(issue.maximum)}`;
    case 'invalid_union':
      return 'give a secret reference: `{ env: NAME }` or `{ file: path }`';
    default:
      return 'see the configuration reference in README.md';
  }
}

export function validateConfig(raw: unknown): PortcullisConfig {
  const result = configSchema.safeParse(raw);
  if (result.success) return result.data;
  const problems: ConfigProblem[] = result.error.issues.map((issue) => ({
    key: issuePath('', issue.path),
    problem: issueMessage(issue),
    fix: fixFor(issue),
  }));
  throw new ConfigError(problems);
}

export function loadConfig(path: string, env: NodeJS.ProcessEnv): LoadedConfig {
  const raw = readYaml(path);
  applyEnvOverrides(raw, env);
  const warnings = applyDeprecatedKeys(raw);
  const config = validateConfig(raw);
  const baseDir = dirname(path);
  const problems: ConfigProblem[] = [];
  const resolveOne = (key: keyof ResolvedSecrets): Secret | undefined => {
    try {
      return resolveSecret(`secrets.${key}`, config.secrets[key], baseDir, env);
    } catch (error) {
      if (error instanceof ConfigError) problems.push(...error.problems);
      else throw error;
      return undefined;
    }
  };
  const keySigning = resolveOne('keySigning');
  const master = resolveOne('master');
  const audit = resolveOne('audit');
  if (keySigning === undefined || master === undefined || audit === undefined) throw new ConfigError(problems);
  return { config, path, dataDir: resolve(baseDir, config.dataDir), secrets: { keySigning, master, audit }, warnings };
}
