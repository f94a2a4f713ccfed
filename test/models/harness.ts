/**
 * A model-gateway test rig: the provider simulator(s), an in-memory record store, memory hot state,
 * the real HTTP shell with a fixed token → principal table, and logs captured line by line so a
 * test can prove what never appears in them. Two rigs given the same store and hot state are two
 * replicas of one deployment.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../bench/simulator/index.js';
import type { Admission, AdmissionRequest, SettleOutcome } from '../../src/admission/types.js';
import { createAead } from '../../src/core/aead.js';
import type { ManualClock} from '../../src/core/clock.js';
import { systemClock, type Clock } from '../../src/core/clock.js';
import { createLogger } from '../../src/core/logger.js';
import type { Resolver } from '../../src/egress/index.js';
import { createHttpApp, type Authenticate } from '../../src/http/app.js';
import { anonymousPrincipal, type Principal } from '../../src/identity/principal.js';
import { createModelService, modelsConfigSchema, unguardedAdmission, type ModelService } from '../../src/models/index.js';
import { registerModelServiceRoutes } from '../../src/models/wiring.js';
import { modelsDb } from '../../src/models/tables.js';
import type { UsageSums } from '../../src/models/usage-records.js';
import type { RecordStore } from '../../src/store/db/index.js';
import { openTestRecordStore } from '../../src/store/db/testing.js';
import { MemoryHotState, type HotState } from '../../src/store/state/index.js';
import type { FastifyInstance } from 'fastify';

export const MANAGED_KEY = 'sk-managed-0123456789abcdefghijklmnop';
export const ORG_ID = 'org_models_test';
/** A second organisation, to prove what one org sets up is invisible to another. */
export const OTHER_ORG_ID = 'org_models_other';
/** One master key for every rig, so rigs sharing a record store open each other's sealed keys. */
const MASTER_KEY = randomBytes(32);

export function member(overrides: Partial<Principal> = {}): Principal {
  return {
    kind: 'api_key',
    id: 'key_member',
    keyId: 'key_member',
    userId: 'usr_member',
    orgId: ORG_ID,
    role: 'member',
    userType: 'registered',
    platformAdmin: false,
    scopes: ['models'],
    ip: '127.0.0.1',
    ...overrides,
  };
}

export const admin = (): Principal =>
  member({ id: 'key_admin', keyId: 'key_admin', userId: 'usr_admin', role: 'admin', scopes: ['models', 'providers:write', 'keys:read'] });

export interface Rig {
  url: string;
  app: FastifyInstance;
  primary: Simulator;
  backup: Simulator;
  store: RecordStore;
  service: ModelService;
  settlements: { requestId: string; outcome: SettleOutcome }[];
  /** Every admission request the gateway made, in order (what it estimated, which dependency). */
  admissions: AdmissionRequest[];
  logs: string[];
  /** The Prometheus registry the gateway's metrics are on. */
  metrics: Registry;
  clock: Clock;
  close(): Promise<void>;
}

export interface RigOptions {
  models?: unknown[];
  providers?: (primaryUrl: string, backupUrl: string) => unknown[];
  primary?: SimulatorOptions;
  backup?: SimulatorOptions;
  admission?: Admission;
  clock?: ManualClock;
  freeModels?: Record<string, number>;
  /** `models.egress` (what org custom endpoints may reach). */
  egress?: { allowLoopback?: boolean; allowPrivate?: boolean; allowHttpHosts?: string[] };
  /** DNS answers for every outbound check (write time and connect time). */
  dns?: Resolver;
  /** Shared with another rig to make the two replicas of one deployment; the rig then does not close them. */
  store?: RecordStore;
  state?: HotState;
}

export const PRICE = { inputPerMTok: 2_500_000, outputPerMTok: 10_000_000, cachedInputPerMTok: 1_250_000 };

export const DEFAULT_MODELS = [
  { alias: 'chat', provider: 'sim', upstreamModel: 'sim-chat', price: PRICE, fallbacks: ['chat-backup'], maxOutputTokens: 1000 },
  { alias: 'chat-backup', provider: 'sim-backup', upstreamModel: 'sim-chat-large', price: PRICE, maxOutputTokens: 1000 },
  { alias: 'embed', provider: 'sim', upstreamModel: 'sim-embed', price: { inputPerMTok: 20_000, outputPerMTok: 0 } },
  { alias: 'whisper', provider: 'sim', upstreamModel: 'sim-whisper', price: { inputPerMTok: 0, outputPerMTok: 0, audioPerSecond: 100 } },
  { alias: 'claude', provider: 'sim-anthropic', upstreamModel: 'sim-claude', price: { inputPerMTok: 3_000_000, outputPerMTok: 15_000_000 }, maxOutputTokens: 1000 },
  { alias: 'free-chat', provider: 'sim', upstreamModel: 'sim-chat', free: true, maxOutputTokens: 200 },
];

export async function startRig(options: RigOptions = {}): Promise<Rig> {
  const primary = await startSimulator(options.primary ?? { apiKey: MANAGED_KEY });
  const backup = await startSimulator(options.backup ?? {});
  const store = options.store ?? (await openTestRecordStore());
  await store.db
    .insertInto('orgs')
    .values([ORG_ID, OTHER_ORG_ID].map((id) => ({ id, name: id, slug: `${id.replaceAll('_', '-')}-${randomBytes(4).toString('hex')}` })))
    .onConflict((conflict) => conflict.column('id').doNothing())
    .execute();
  const clock = options.clock ?? systemClock;
  const state = options.state ?? new MemoryHotState({ clock });
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(chunk.toString('utf8'));
      done();
    },
  });
  const logger = createLogger({ level: 'trace', destination });
  const settlements: Rig['settlements'] = [];
  const admissions: AdmissionRequest[] = [];
  const admission = options.admission ?? unguardedAdmission((requestId, outcome) => settlements.push({ requestId, outcome }));
  const config = modelsConfigSchema.parse({
    providers: options.providers?.(`${primary.url}/v1`, `${backup.url}/v1`) ?? [
      { id: 'sim', kind: 'openai', baseUrl: `${primary.url}/v1`, apiKey: { env: 'SIM_KEY' }, timeoutMs: 2000 },
      { id: 'sim-backup', kind: 'openai_compatible', baseUrl: `${backup.url}/v1`, timeoutMs: 2000 },
      { id: 'sim-anthropic', kind: 'anthropic', baseUrl: `${primary.url}/v1`, apiKey: { env: 'SIM_KEY' }, timeoutMs: 2000 },
    ],
    models: options.models ?? DEFAULT_MODELS,
    freeModels: options.freeModels ?? {},
    egress: options.egress ?? {},
    usage: { flushIntervalMs: 50, batchSize: 100 },
  });
  const metrics = new Registry();
  const service = await createModelService({
    config,
    db: store.db,
    state,
    aead: createAead({ activeKeyId: 't1', keys: new Map([['t1', MASTER_KEY]]) }),
    admission: { admit: (request) => (admissions.push(request), admission.admit(request)) },
    metrics,
    clock,
    logger,
    env: { SIM_KEY: MANAGED_KEY },
    ...(options.dns === undefined ? {} : { resolver: options.dns }),
  });
  const principals: Record<string, Principal> = {
    'pk-member': member(),
    'pk-admin': admin(),
    'pk-viewer': member({ id: 'key_viewer', keyId: 'key_viewer', role: 'viewer', scopes: ['models'] }),
    'pk-other': member({ id: 'key_other', keyId: 'key_other', userId: 'usr_other', orgId: OTHER_ORG_ID }),
    'pk-other-admin': { ...admin(), id: 'key_other_admin', keyId: 'key_other_admin', userId: 'usr_other_admin', orgId: OTHER_ORG_ID },
  };
  const authenticate: Authenticate = async (credential, context) => {
    if (credential === null) return { ok: true, principal: context.allowAnonymous ? anonymousPrincipal(context.ip) : null };
    const principal = principals[credential.token];
    return principal === undefined ? { ok: false, code: 'invalid_token' } : { ok: true, principal };
  };
  const { app, registry } = createHttpApp({
    logger,
    bodyLimitBytes: 1024 * 1024,
    trustedProxies: [],
    behindTls: false,
    authenticate,
    readiness: async () => ({ ready: true, checks: {} }),
    metrics,
    version: 'test',
  });
  registerModelServiceRoutes(app, registry, service, { db: store.db, authenticate });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    url: address.replace('[::1]', '127.0.0.1'),
    app,
    primary,
    backup,
    store,
    service,
    settlements,
    admissions,
    logs,
    metrics,
    clock,
    close: async () => {
      // As the gateway's own shutdown does: a grace period, then remaining connections are cut.
      const grace = setTimeout(() => app.server.closeAllConnections(), 500);
      await app.close();
      clearTimeout(grace);
      await service.close();
      if (options.store === undefined) await store.close();
      if (options.state === undefined) await state.close();
      await primary.close();
      await backup.close();
    },
  };
}

/** Waits until `check` passes or `ms` elapse (polling every 10 ms). */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Sums over every usage bucket, after writing what is still buffered. */
export async function usageTotals(rig: Pick<Rig, 'service' | 'store'>): Promise<UsageSums> {
  await rig.service.usage.flush();
  const row = await modelsDb(rig.store.db)
    .selectFrom('usage_rollups')
    .select((eb) => [
      eb.fn.coalesce(eb.fn.sum<string>('requests'), eb.lit(0)).as('requests'),
      eb.fn.coalesce(eb.fn.sum<string>('input_tokens'), eb.lit(0)).as('input'),
      eb.fn.coalesce(eb.fn.sum<string>('output_tokens'), eb.lit(0)).as('output'),
      eb.fn.coalesce(eb.fn.sum<string>('cached_input_tokens'), eb.lit(0)).as('cached'),
      eb.fn.coalesce(eb.fn.sum<string>('cost_micros'), eb.lit(0)).as('cost'),
      eb.fn.coalesce(eb.fn.sum<string>('unmetered_requests'), eb.lit(0)).as('unmetered'),
    ])
    .executeTakeFirstOrThrow();
  return {
    requests: Number(row.requests),
    inputTokens: Number(row.input),
    outputTokens: Number(row.output),
    cachedInputTokens: Number(row.cached),
    costMicros: Number(row.cost),
    unmeteredRequests: Number(row.unmetered),
  };
}

/** What was metered since `before` (tests in one file run one at a time, so this is one call's usage). */
export async function usageSince(rig: Pick<Rig, 'service' | 'store'>, before: UsageSums): Promise<UsageSums> {
  const now = await usageTotals(rig);
  return {
    requests: now.requests - before.requests,
    inputTokens: now.inputTokens - before.inputTokens,
    outputTokens: now.outputTokens - before.outputTokens,
    cachedInputTokens: now.cachedInputTokens - before.cachedInputTokens,
    costMicros: now.costMicros - before.costMicros,
    unmeteredRequests: now.unmeteredRequests - before.unmeteredRequests,
  };
}
