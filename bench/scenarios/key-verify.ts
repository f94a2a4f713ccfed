/**
 * API key verifications per second on one core (secrets imported once, JIT warm), side by side with
 * a bare `jose.jwtVerify` of the same token under the same key, twice: a key seen before (the
 * request hot path: memoised, so a digest, a lookup and the expiry and deny-list checks) and a key
 * verified in full every time (memo off: prefix, shape, strict header and claims schemas, typ,
 * signature, deny-list). The second ratio shows what Portcullis' checks cost over the signature.
 */
import { createSecretKey, randomBytes } from 'node:crypto';
import { jwtVerify } from 'jose';
import { systemClock } from '../../src/core/clock.js';
import { API_KEY_PREFIX, ApiKeySigner, ApiKeyVerifier, DEFAULT_KEY_TTL_MS } from '../../src/identity/keys/index.js';
import { alternate, measureOps, pairedRatio, type OpsSample } from '../ab.js';
import { markdownTable, type BenchContext, type Scenario, type ScenarioReport } from '../scenario.js';
import { median, round } from '../stats.js';

async function setUp() {
  const secret = new Uint8Array(randomBytes(32));
  const secrets = new Map([['bench', secret]]);
  const signer = new ApiKeySigner({ secrets, signingKid: 'bench', clock: systemClock, defaultTtlMs: DEFAULT_KEY_TTL_MS, maxTtlMs: DEFAULT_KEY_TTL_MS });
  const revoked = new Set<string>();
  const verifier = new ApiKeyVerifier({ secrets, clock: systemClock, isRevoked: (keyId) => revoked.has(keyId) });
  const fullVerifier = new ApiKeyVerifier({ secrets, clock: systemClock, isRevoked: (keyId) => revoked.has(keyId), memoEntries: 0 });
  const { token } = await signer.sign({
    keyId: 'key_benchbenchbenchbenc',
    userId: 'usr_benchbenchbenchbenc',
    orgId: 'org_benchbenchbenchbenc',
    scopes: ['models:invoke'],
    pepper: randomBytes(16).toString('base64url'),
  });
  const jws = token.slice(API_KEY_PREFIX.length);
  const key = createSecretKey(secret);

  // Both sides must succeed on this token, or the comparison measures a failure path.
  for (const candidate of [verifier, fullVerifier]) {
    const ours = await candidate.verify(token);
    if (!ours.ok) throw new Error(`key-verify: the Portcullis verifier refused a fresh key (${ours.code})`);
  }
  await jwtVerify(jws, key, { algorithms: ['HS256'] });

  return {
    portcullis: () => verifier.verify(token),
    portcullisFull: () => fullVerifier.verify(token),
    bareJose: () => jwtVerify(jws, key, { algorithms: ['HS256'] }),
  };
}

const summariseSide = (samples: readonly OpsSample[]) => ({
  opsPerSecondMedian: median(samples.map((s) => s.opsPerSecond)),
  cpuMicrosPerOpMedian: median(samples.map((s) => (s.cpuMs * 1000) / s.operations)),
  rounds: samples.map((s) => ({ operations: s.operations, durationMs: s.durationMs, opsPerSecond: s.opsPerSecond, cpuMs: s.cpuMs })),
});

export const keyVerify: Scenario = {
  name: 'key-verify',
  title: 'API key verification',
  description:
    'ApiKeyVerifier.verify of one valid key — seen before (memoised, the hot path) and checked in full — vs. a bare jose.jwtVerify (HS256) of the same token and key, in one process on one core, warm, alternating rounds.',
  async run(context: BenchContext): Promise<ScenarioReport> {
    const sides = await setUp();
    const { rounds, measureMs, warmupMs } = context.settings;
    // Shorter rounds than the HTTP runs: each op is microseconds, and more rounds beat longer ones.
    const roundMs = Math.max(200, Math.round(measureMs / 2));
    await measureOps(sides.portcullis, warmupMs);
    await measureOps(sides.portcullisFull, warmupMs);
    await measureOps(sides.bareJose, warmupMs);
    context.log(`  ${rounds} alternating rounds of ${roundMs} ms per side, twice`);
    const known = await alternate(
      rounds,
      { name: 'portcullis', run: () => measureOps(sides.portcullis, roundMs) },
      { name: 'jose', run: () => measureOps(sides.bareJose, roundMs) },
    );
    const full = await alternate(
      rounds,
      { name: 'portcullis-full', run: () => measureOps(sides.portcullisFull, roundMs) },
      { name: 'jose', run: () => measureOps(sides.bareJose, roundMs) },
    );
    const portcullis = summariseSide(known.a);
    const portcullisFull = summariseSide(full.a);
    const jose = summariseSide([...known.b, ...full.b]);
    const ratio = pairedRatio(known.a.map((s) => s.opsPerSecond), known.b.map((s) => s.opsPerSecond));
    const fullRatio = pairedRatio(full.a.map((s) => s.opsPerSecond), full.b.map((s) => s.opsPerSecond));
    const peakRssBytes = process.resourceUsage().maxRSS * 1024;
    const markdown = [
      markdownTable(
        ['verifier', 'verifications/s (median)', 'CPU µs/verification', 'rounds'],
        [
          ['Portcullis ApiKeyVerifier.verify, key seen before (hot path)', round(portcullis.opsPerSecondMedian), round(portcullis.cpuMicrosPerOpMedian), rounds],
          ['Portcullis ApiKeyVerifier.verify, full check every time', round(portcullisFull.opsPerSecondMedian), round(portcullisFull.cpuMicrosPerOpMedian), rounds],
          ['bare jose.jwtVerify (HS256)', round(jose.opsPerSecondMedian), round(jose.cpuMicrosPerOpMedian), rounds * 2],
        ],
      ),
      '',
      `Ratios to bare jose (medians of per-round ratios): key seen before **${round(ratio)}×**, full check **${round(fullRatio)}×**. Peak RSS of the benchmark process: ${round(peakRssBytes / 1024 / 1024)} MiB.`,
    ].join('\n');
    return { markdown, data: { roundMs, portcullis, portcullisFull, bareJose: jose, ratio, fullRatio, peakRssBytes } };
  },
};
