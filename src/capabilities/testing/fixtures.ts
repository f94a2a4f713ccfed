/** Shared test fixtures for the capability modules: a keyring, claims and a fixed clock origin. */
import type { CapabilityClaims, CapabilityGrant } from '../claims.js';
import { CapabilityKeyring, type CapabilityKeyInput } from '../keyring.js';

export const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
export const HOUR = 60 * 60 * 1000;
export const SESSION = 'ses_AAAAAAAAAAAAAAAA';
export const OTHER_SESSION = 'ses_BBBBBBBBBBBBBBBB';
export const CONTAINER = 'ctr-1';

export function secret(fill: number): Uint8Array {
  return new Uint8Array(32).fill(fill);
}

export function keyring(keys?: CapabilityKeyInput[], maxLifetimeMs?: number): CapabilityKeyring {
  return new CapabilityKeyring(keys ?? [{ id: 'k1', secret: secret(1), createdAt: T0 - HOUR }], maxLifetimeMs === undefined ? {} : { maxLifetimeMs });
}

export const modelGrant: CapabilityGrant = {
  name: 'openai',
  origin: 'https://api.openai.com',
  methods: ['POST'],
  pathPrefixes: ['/v1/chat/completions', '/v1/responses'],
  credential: { ref: 'provider:openai', header: 'authorization', scheme: 'Bearer' },
  routeClass: 'provider_model',
};

/** Backend grants that share one origin: a session-ingest route and a catch-all. */
export const ingestGrant: CapabilityGrant = {
  name: 'ingest',
  origin: 'https://target.example.com',
  methods: ['POST'],
  pathPrefixes: [`/api/sessions/${SESSION}/events`],
  credential: { ref: 'backend:service', header: 'authorization', scheme: 'Bearer' },
  routeClass: 'session_ingest',
};

export const backendGrant: CapabilityGrant = {
  name: 'backend',
  origin: 'https://target.example.com',
  methods: ['GET', 'POST'],
  pathPrefixes: ['/'],
  credential: { ref: 'backend:service', header: 'authorization', scheme: 'Bearer' },
  routeClass: 'backend_api',
};

export function claims(overrides: Partial<CapabilityClaims> = {}): CapabilityClaims {
  return {
    purpose: 'capability',
    capabilityId: 'cap_AAAAAAAAAAAAAAAA',
    userId: 'usr_AAAAAAAAAAAAAAAA',
    orgId: 'org_AAAAAAAAAAAAAAAA',
    sessionId: SESSION,
    binding: { type: 'container', containerId: CONTAINER },
    grants: [modelGrant, ingestGrant, backendGrant],
    issuedAt: T0,
    expiresAt: T0 + HOUR,
    ...overrides,
  };
}
