/** The capability the capabilities scenario opens, and the egress proxy process seals, for the simulator. */
import type { CapabilityClaims } from '../src/capabilities/index.js';

export const BENCH_CONTAINER = 'ctr-bench';

/** A capability for the upstream: model calls under `/v1/` and one session's event ingest. */
export function benchClaims(origin: string, now: number): CapabilityClaims {
  return {
    purpose: 'capability',
    capabilityId: 'cap_benchbenchbenchbe',
    userId: 'usr_benchbenchbenchbe',
    orgId: 'org_benchbenchbenchbe',
    sessionId: 'ses_benchbenchbenchbe',
    binding: { type: 'container', containerId: BENCH_CONTAINER },
    grants: [
      { name: 'sim', origin, methods: ['POST'], pathPrefixes: ['/v1/'], credential: { ref: 'sim', header: 'authorization', scheme: 'Bearer' }, routeClass: 'provider_model' },
      { name: 'ingest', origin, methods: ['POST'], pathPrefixes: ['/api/sessions/ses_benchbenchbenchbe/events'], credential: { ref: 'sim', header: 'authorization' }, routeClass: 'session_ingest' },
    ],
    issuedAt: now,
    expiresAt: now + 60 * 60 * 1000,
  };
}

