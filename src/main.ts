/**
 * Composition root: configuration → stores → services → HTTP. Nothing else in the code base wires
 * components together, so this file is the one map of how a running gateway is built.
 */
import { hkdfSync } from 'node:crypto';
import { dirname } from 'node:path';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { LoadedConfig } from './config/load.js';
import { AuditLog, registerAuditRoutes, runAuditVerify, type AuditCheckpoint } from './audit/index.js';
import { createAead } from './core/aead.js';
import { systemClock, type Clock } from './core/clock.js';
import { startIntervalJob } from './core/interval-job.js';
import { createLogger, type Logger } from './core/logger.js';
import { createHttpApp, type ReadinessReport } from './http/app.js';
import { createAuthenticator } from './identity/authenticate.js';
import { IdentityCache, IdentityEvents, createDbIdentityRecords } from './identity/cache/index.js';
import { ApiKeySigner, ApiKeyVerifier } from './identity/keys/index.js';
import { createLocalAuth, registerLocalAuthRoutes } from './identity/local/index.js';
import { OidcVerifier, parseOidcIssuers } from './identity/oidc/index.js';
import { bootstrapPlatformAdmin, can, principalInOrg, registerTenancyRoutes } from './identity/tenancy/index.js';
import type { Principal } from './identity/principal.js';
import { openRecordStore, type RecordStore } from './store/db/index.js';
export { migrateToLatest } from './store/db/index.js';
import { createHotState, type HotState } from './store/state/index.js';
import { createTasks } from './tasks/index.js';
import { createCapabilityService, resolveCapabilityConfig, type CapabilityService } from './capabilities/http/index.js';
import { createEconomics, parseDefaultBudgets } from './admission/economics/index.js';
import { createAdmission, createStoreBreakers, parseAdmissionConfig } from './admission/index.js';
import { clockOffsetFromEnv, offsetClock } from './config/clock-offset.js';
import { wireModelGateway } from './models/wiring.js';

const VERSION = '0.1.0';
const DAY_MS = 24 * 60 * 60 * 1000;
/** Key ids of the secrets from config; rotation adds new ids next to these. */
const SIGNING_KID = 'k1';
const AUDIT_KID = 'a1';
const MASTER_KID = 'm1';

export interface Stores {
  records: RecordStore;
  state: HotState;
  close(): Promise<void>;
}

export async function openStores(loaded: LoadedConfig, options: { migrate?: boolean; logger?: Logger } = {}): Promise<Stores> {
  const { config } = loaded;
  const records = await openRecordStore({
    ...(config.database.url === undefined ? { dataDir: loaded.dataDir } : { databaseUrl: config.database.url }),
    migrate: options.migrate ?? true,
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  let state: HotState;
  try {
    state = await createHotState({ ...(config.redis.url === undefined ? {} : { redisUrl: config.redis.url }), prefix: config.redis.prefix });
  } catch (error) {
    await records.close();
    throw error;
  }
  return {
    records,
    state,
    close: async () => {
      await state.close();
      await records.close();
    },
  };
}

function keySigner(loaded: LoadedConfig, clock: Clock): ApiKeySigner {
  return new ApiKeySigner({
    secrets: new Map([[SIGNING_KID, loaded.secrets.keySigning.bytes()]]),
    signingKid: SIGNING_KID,
    clock,
    defaultTtlMs: loaded.config.keys.defaultTtlDays * DAY_MS,
    maxTtlMs: loaded.config.keys.maxTtlDays * DAY_MS,
  });
}

/** This process's clock: the system clock, shifted by PORTCULLIS_CLOCK_OFFSET_MS (skew tests; see config/clock-offset.ts). */
function processClock(): Clock {
  return offsetClock(systemClock, clockOffsetFromEnv(process.env));
}

/** The AEAD key is derived from the configured master secret, so any secret length ≥ 32 bytes works. */
function masterKey(loaded: LoadedConfig): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', loaded.secrets.master.bytes(), Buffer.alloc(0), 'portcullis aead v1', 32));
}

export interface BootstrappedAdmin {
  userId: string;
  orgId: string;
  token: string;
}

/** Creates the first platform admin when none exists; null when one already does. */
export async function bootstrapAdmin(loaded: LoadedConfig, stores: Stores): Promise<BootstrappedAdmin | null> {
  const audit = new AuditLog({ db: stores.records.db, signingKey: { id: AUDIT_KID, secret: loaded.secrets.audit.bytes() } });
  try {
    const result = await bootstrapPlatformAdmin(stores.records.db, keySigner(loaded, processClock()), {
      audit,
      ttlMs: loaded.config.keys.maxTtlDays * DAY_MS,
    });
    return result.created ? { userId: result.userId, orgId: result.orgId, token: result.token } : null;
  } finally {
    await audit.close();
  }
}

export async function runAuditVerifyCommand(loaded: LoadedConfig, options: { anchor?: AuditCheckpoint } = {}): Promise<{ exitCode: number; message: string }> {
  const records = await openRecordStore({
    ...(loaded.config.database.url === undefined ? { dataDir: loaded.dataDir } : { databaseUrl: loaded.config.database.url }),
    migrate: false,
  });
  try {
    return await runAuditVerify({ db: records.db, keys: new Map([[AUDIT_KID, loaded.secrets.audit.bytes()]]), ...options });
  } finally {
    await records.close();
  }
}

export interface RunningGateway {
  url: string;
  /** Stops accepting, drains in-flight requests, flushes the audit buffer, closes the stores. */
  close(): Promise<void>;
}

export async function startGateway(loaded: LoadedConfig, options: { logger?: Logger; clock?: Clock } = {}): Promise<RunningGateway> {
  const { config } = loaded;
  const logger = options.logger ?? createLogger({ level: config.logging.level });
  for (const warning of loaded.warnings) logger.warn(warning);
  const clock = options.clock ?? processClock();
  // Built before anything opens, so a bad secret or issuer stops the start, not the first request.
  const signer = keySigner(loaded, clock);
  const oidcIssuers = parseOidcIssuers(config.oidc.issuers);
  // Capability keys and upstream credentials resolve here, so a missing one stops the start.
  const capabilityConfig = config.capabilities === undefined ? undefined : resolveCapabilityConfig(config.capabilities, { baseDir: dirname(loaded.path), env: process.env });
  const defaultBudgets = parseDefaultBudgets(config.budgets.defaults);
  const aead = createAead({ activeKeyId: MASTER_KID, keys: new Map([[MASTER_KID, masterKey(loaded)]]) });
  const admissionConfig = parseAdmissionConfig(config.admission);

  const stores = await openStores(loaded, { logger });
  const { records, state } = stores;
  // The stores' own circuit breakers (per replica, in memory; settings follow the live admission
  // config once it runs): admission, budgets and tasks use the hot state behind its breaker, and
  // record-store reads on request paths (identity cache misses, org membership) go behind the other.
  const storeBreakers = createStoreBreakers({ settings: admissionConfig.storeCircuit, clock, logger });
  const guardedState = storeBreakers.guardHotState(state);
  const inOrg = (principal: Principal, orgId: string) => storeBreakers.runRecords(() => principalInOrg(records.db, principal, orgId));
  const audit = new AuditLog({
    db: records.db,
    signingKey: { id: AUDIT_KID, secret: loaded.secrets.audit.bytes() },
    clock,
    logger,
    checkpointEvery: config.audit.checkpointEvery,
    checkpointIntervalMs: config.audit.checkpointIntervalMs,
  });
  const identityRecords = storeBreakers.guardRecords(createDbIdentityRecords(records.db));
  const identity = new IdentityCache({ records: identityRecords, pubsub: state, clock, logger });
  await identity.start();
  const events = new IdentityEvents({ records: identityRecords, pubsub: state, clock, cache: identity, logger });
  const verifier = new ApiKeyVerifier({
    secrets: new Map([[SIGNING_KID, loaded.secrets.keySigning.bytes()]]),
    clock,
    maxTtlMs: config.keys.maxTtlDays * DAY_MS,
    isRevoked: (keyId) => identity.isRevoked(keyId),
  });
  const oidc = oidcIssuers.length === 0 ? undefined : new OidcVerifier({ issuers: oidcIssuers, clock });
  const localAuth = createLocalAuth({
    db: records.db,
    hot: state,
    audit,
    clock,
    aead,
    config: {
      sessionLifetimeMs: config.sessions.ttlHours * 60 * 60 * 1000,
      behindTls: config.server.behindTls,
      lockout: { maxFailures: config.login.maxFailures, windowMs: config.login.windowSeconds * 1000, lockMs: config.login.lockSeconds * 1000 },
    },
  });
  const stopLocalAuth = await localAuth.start();
  // The sandbox credential broker, only when configured; its revocation list loads before serving.
  const capabilities: CapabilityService | undefined =
    capabilityConfig === undefined ? undefined : createCapabilityService({ config: capabilityConfig, db: records.db, state, audit, clock, logger });
  await capabilities?.start();
  // Expired and revoked sessions are dead weight; their rows carry no history worth keeping.
  const sessionSweeper = startIntervalJob('session-sweeper', 10 * 60 * 1000, () => localAuth.sessions.deleteDead(), logger);
  const authenticate = createAuthenticator({
    keys: verifier,
    identity,
    ...(oidc === undefined ? {} : { oidc }),
    sessionResolver: localAuth.resolveSession,
    ...(capabilities === undefined ? {} : { capabilities: capabilities.capabilityPrincipal }),
  });

  const metrics = new Registry();
  collectDefaultMetrics({ register: metrics });
  // Budgets: loaded into memory before the first request; the pipeline takes `economics.gate`.
  const economics = createEconomics({
    db: records.db,
    state: guardedState,
    audit,
    clock,
    defaults: defaultBudgets,
    // The one unpriced-model switch; the economics gate is the one place it is applied.
    allowUnpriced: config.models.allowUnpricedModels,
    reservationTtlMs: config.budgets.reservationTtlSeconds * 1000,
    reconcileIntervalMs: config.budgets.reconcileIntervalSeconds * 1000,
    refreshMs: config.budgets.refreshSeconds * 1000,
    metrics,
    logger,
  });
  await economics.start();
  const readiness = async (): Promise<ReadinessReport> => {
    const [db, hot] = await Promise.allSettled([records.ping(), state.ping()]);
    const checks = { recordStore: db.status === 'fulfilled' ? 'ok' : 'failing', hotState: hot.status === 'fulfilled' ? 'ok' : 'failing' } as const;
    return { ready: db.status === 'fulfilled' && hot.status === 'fulfilled' && identity.ready, checks };
  };
  const { app, registry } = createHttpApp({
    logger,
    bodyLimitBytes: config.server.bodyLimitBytes,
    requestTimeoutMs: config.server.requestTimeoutMs,
    trustedProxies: config.server.trustedProxies,
    behindTls: config.server.behindTls,
    authenticate,
    readiness,
    metrics,
    version: VERSION,
  });
  registerTenancyRoutes(app, registry, {
    db: records.db,
    signer,
    events,
    audit,
    clock,
    runtimeMintTimeoutMs: config.runtime.mintTimeoutMs,
    setPassword: (userId, password) => localAuth.setPassword(userId, password),
  });
  registerLocalAuthRoutes(app, registry, localAuth);
  await capabilities?.register(app, registry);
  economics.registerRoutes(app, registry);
  // Task ingress, status and the worker API; the requeue job and the outbox relay start once listening.
  const tasks = createTasks({
    state: guardedState,
    db: records.db,
    audit,
    logger,
    settings: {
      leaseMs: config.tasks.leaseSeconds * 1000,
      healthyMs: config.tasks.workerHealthySeconds * 1000,
      requeueIntervalMs: config.tasks.requeueIntervalMs,
      relayIntervalMs: config.tasks.relayIntervalMs,
      recordTtlMs: config.tasks.recordTtlHours * 60 * 60 * 1000,
      hardLimitPercent: config.tasks.hardLimitPercent,
    },
  });
  // Admission: the pipeline every guarded request runs (task ingress here; the model routes take
  // `admission.pipeline`). Hot-state failures refuse with 503 dependency_unavailable.
  const admission = createAdmission({
    config: admissionConfig,
    state: guardedState,
    storeBreakers,
    db: records.db,
    audit,
    metrics,
    economics: economics.gate,
    workerCapacity: () => tasks.workerCapacity(),
    clock,
    logger,
  });
  await admission.start();
  admission.registerRoutes(app, registry, inOrg);
  tasks.registerRoutes(app, registry, { admission: admission.pipeline, resolveInOrg: inOrg });
  // Model gateway: /v1 model routes through the admission pipeline, usage metering, BYOK keys.
  const models = await wireModelGateway({
    config: config.models,
    app,
    registry,
    db: records.db,
    state: guardedState,
    aead,
    admission: admission.pipeline,
    authenticate,
    audit,
    metrics,
    clock,
    logger,
    baseDir: dirname(loaded.path),
  });
  registerAuditRoutes(app, registry, {
    db: records.db,
    // Sessions span orgs: the role that counts is the one held in this org, read from memberships.
    canReadAudit: async (principal, orgId) => {
      const member = await inOrg(principal, orgId);
      return member !== null && can(member, 'audit.read', orgId);
    },
    isMember: async (principal, orgId) => (await inOrg(principal, orgId)) !== null,
  });

  // The services' teardown, shared by a failed listen and close(): models first so the last
  // usage rows are flushed, the stores last because everything above writes to them.
  const stopServices = async (): Promise<void> => {
    await models.close();
    await admission.stop();
    await economics.stop();
    await capabilities?.close();
    await identity.stop();
    await audit.close();
    await stores.close();
  };

  let address: string;
  try {
    address = await app.listen({ host: config.server.host, port: config.server.port });
  } catch (error) {
    await stopServices();
    throw error;
  }
  tasks.start();
  const url = address.replace('[::1]', '127.0.0.1');
  logger.info({ url, records: records.kind, hotState: state.kind }, 'portcullis started');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const grace = setTimeout(() => app.server.closeAllConnections(), config.server.shutdownGraceMs);
      grace.unref();
      await app.close();
      clearTimeout(grace);
      await sessionSweeper.stop();
      await stopLocalAuth();
      // Before the audit log closes: the relay's last pass writes the remaining task events.
      await tasks.stop();
      // After the server stops: the last usage rows are flushed before the stores close.
      await stopServices();
      logger.info('portcullis stopped');
    })();
    return closing;
  };
  return { url, close };
}
