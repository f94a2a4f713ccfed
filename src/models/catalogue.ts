/**
 * The model catalogue built from config at start: alias → provider + upstream model + price, with
 * the fallback chain resolved once. Providers' managed credentials are resolved here too, so a
 * missing secret stops the start rather than the first request.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../config/errors.js';
import type { SecretRef } from '../config/secrets.js';
import type { ModelConfig, ModelsConfig, Price, ProviderConfig } from './config.js';
import { adapterFor, type ProviderAdapter } from './providers/index.js';

export interface CatalogueProvider {
  id: string;
  kind: ProviderConfig['kind'];
  baseUrl: string;
  /** Streamed calls' wait for the first byte, and every call's longest silence mid-body. */
  timeoutMs: number;
  /** Non-streamed calls' wait for the answer (the provider sends it only once it is complete). */
  responseTimeoutMs: number;
  adapter: ProviderAdapter;
  /**
   * The key sent upstream unless an org's own key replaces it: the managed key from config, or a
   * custom endpoint's own key. Never logged.
   */
  managedKey: string | null;
  /** What the circuit breaker guards for calls to this provider (`provider:<id>`; per org for custom endpoints). */
  dependency: string;
  /** `provider`: operator-configured, its host trusted; `org`: an org's custom endpoint, checked by `models.egress` alone. */
  egress: 'provider' | 'org';
}

export interface CatalogueModel {
  alias: string;
  provider: CatalogueProvider;
  upstreamModel: string;
  free: boolean;
  /** null: unpriced (refused unless config allows it; free models are priced at zero). */
  price: Price | null;
  maxOutputTokens: number;
  /** The context window: what bounds the input of a call whose content the provider expands (unbounded-input.ts). */
  maxInputTokens: number;
  /** Whether calls may use tools the provider runs and bills outside token usage (server-tools.ts). */
  allowServerTools: boolean;
  /** Aliases tried after this one, in order. */
  fallbacks: readonly string[];
}

/** A managed provider key: any non-empty value (provider keys have no minimum length of ours). */
function resolveProviderKey(path: string, ref: SecretRef, baseDir: string, env: NodeJS.ProcessEnv): string {
  let raw: string | undefined;
  if ('env' in ref) {
    raw = env[ref.env];
    if (raw === undefined || raw.trim() === '') throw ConfigError.single(path, `environment variable ${ref.env} is not set`, `export ${ref.env}=<the provider's API key>`);
  } else {
    const file = isAbsolute(ref.file) ? ref.file : resolve(baseDir, ref.file);
    try {
      raw = readFileSync(file, 'utf8');
    } catch {
      throw ConfigError.single(path, `file ${ref.file} cannot be read (resolved to ${file})`, 'create the file (mode 0600) holding only the key');
    }
  }
  const key = raw.trim();
  if (key.length === 0 || key.length > 4096 || /[\r\n]/.test(key)) throw ConfigError.single(path, 'the provider key is empty, too long or spans lines', 'store only the key itself');
  return key;
}

export class ModelCatalogue {
  readonly #models = new Map<string, CatalogueModel>();
  readonly #providers = new Map<string, CatalogueProvider>();

  constructor(config: ModelsConfig, options: { baseDir?: string; env?: NodeJS.ProcessEnv } = {}) {
    const baseDir = options.baseDir ?? process.cwd();
    const env = options.env ?? process.env;
    config.providers.forEach((provider, index) => {
      this.#providers.set(provider.id, {
        id: provider.id,
        kind: provider.kind,
        baseUrl: provider.baseUrl.replace(/\/+$/, ''),
        timeoutMs: provider.timeoutMs,
        responseTimeoutMs: provider.responseTimeoutMs,
        adapter: adapterFor(provider.kind),
        managedKey: provider.apiKey === undefined ? null : resolveProviderKey(`models.providers[${index}].apiKey`, provider.apiKey, baseDir, env),
        dependency: `provider:${provider.id}`,
        egress: 'provider',
      });
    });
    for (const model of config.models) this.#models.set(model.alias, this.#entry(model));
  }

  #entry(model: ModelConfig): CatalogueModel {
    const provider = this.#providers.get(model.provider);
    if (provider === undefined) throw ConfigError.single('models.models', `unknown provider "${model.provider}"`, 'declare it under models.providers');
    return {
      alias: model.alias,
      provider,
      upstreamModel: model.upstreamModel,
      free: model.free,
      price: model.free ? { inputPerMTok: 0, outputPerMTok: 0 } : (model.price ?? null),
      maxOutputTokens: model.maxOutputTokens,
      maxInputTokens: model.maxInputTokens,
      allowServerTools: model.allowServerTools,
      fallbacks: model.fallbacks,
    };
  }

  get(alias: string): CatalogueModel | undefined {
    return this.#models.get(alias);
  }

  provider(id: string): CatalogueProvider | undefined {
    return this.#providers.get(id);
  }

  models(): CatalogueModel[] {
    return [...this.#models.values()];
  }

  providers(): CatalogueProvider[] {
    return [...this.#providers.values()];
  }

  /** The model and its fallbacks, in order, without repeats, at most `max` entries. */
  chain(model: CatalogueModel, max: number): CatalogueModel[] {
    const chain = [model];
    for (const alias of model.fallbacks) {
      const next = this.#models.get(alias);
      if (next !== undefined && !chain.includes(next)) chain.push(next);
    }
    return chain.slice(0, max);
  }

  /** Hosts of operator-configured providers: trusted to resolve to loopback/private (never metadata). */
  trustedHosts(): string[] {
    return [...new Set(this.providers().map((provider) => new URL(provider.baseUrl).hostname))];
  }
}
