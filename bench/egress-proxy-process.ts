/**
 * The sandbox egress proxy in a process of its own, for the capabilities scenario: the capability
 * service (in-memory hot state, the embedded record store of a folder `portcullis init` made, the
 * runtime tuned as `portcullis start` tunes it) behind the shell's test app, a keyring of
 * its own and one upstream credential, so its CPU and peak RSS are its own and not the load
 * generator's. It seals one container-bound capability for the upstream and announces it.
 *
 * `node dist/bench/egress-proxy-process.js <upstream origin> <data folder>` prints `{"url": …, "token": …,
 * "container": …}` once listening.
 */
import { randomBytes } from 'node:crypto';
import { MemoryAuditSink } from '../src/audit/sink.js';
import { sealCapability } from '../src/capabilities/index.js';
import { CapabilityKeyring } from '../src/capabilities/keyring.js';
import { TrustedHops, createCapabilityService } from '../src/capabilities/http/index.js';
import { tuneRuntimeForServing } from '../src/cli/runtime-tuning.js';
import { systemClock } from '../src/core/clock.js';
import { Secret } from '../src/config/secrets.js';
import { createTestHttpApp } from '../src/http/testing.js';
import { openPglite } from '../src/store/db/dialects/pglite.js';
import { migrateToLatest } from '../src/store/db/migrate.js';
import { storeOf } from '../src/store/db/record-store.js';
import { MemoryHotState } from '../src/store/state/index.js';
import { BENCH_CONTAINER, benchClaims } from './capability-claims.js';

const USAGE = 'usage: egress-proxy-process <http upstream origin> <data folder>';

async function main(): Promise<void> {
  // As `portcullis start` tunes itself, so the process's memory is a serving one's.
  tuneRuntimeForServing();
  const upstream = new URL(process.argv[2] ?? '');
  if (upstream.protocol !== 'http:') throw new Error(USAGE);
  // The embedded store of a data folder `portcullis init` made, opened as `portcullis start` opens it.
  const dataDir = process.argv[3];
  if (dataDir === undefined) throw new Error(USAGE);
  const { db } = await openPglite({ dataDir });
  await migrateToLatest(db);
  const store = storeOf(db, 'pglite');
  const state = new MemoryHotState();
  const keyring = new CapabilityKeyring([{ id: 'bench', secret: new Uint8Array(randomBytes(32)), createdAt: Date.now() - 1000 }]);
  const service = createCapabilityService({
    config: {
      keyring,
      maxLifetimeMs: keyring.maxLifetimeMs,
      credentials: new Map([['sim', new Secret(Buffer.from('sim-upstream-credential-0123456789abcdef'), 'bench')]]),
      devHttpHosts: [upstream.hostname],
      trustedHops: new TrustedHops(['127.0.0.1']),
      egress: { allowLoopback: true, allowPrivate: false, timeoutMs: 30_000 },
    },
    db: store.db,
    state,
    audit: new MemoryAuditSink(),
    clock: systemClock,
    // Audit one in a thousand successes, as a busy deployment would.
    redeemSampleEvery: 1000,
  });
  const { app, registry } = createTestHttpApp();
  await service.start();
  await service.register(app, registry);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const token = sealCapability(benchClaims(upstream.origin, Date.now()), keyring);
  console.log(JSON.stringify({ url, token, container: BENCH_CONTAINER }));
  const stop = async (): Promise<void> => {
    await app.close();
    await service.close();
    await state.close();
    await store.close();
    process.exit(0);
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void stop());
}

await main();
