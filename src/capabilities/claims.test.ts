import { describe, expect, it } from 'vitest';
import { capabilityClaimsSchema, isAllowedTargetOrigin, isCanonicalOrigin, isPlainPathPrefix } from './claims.js';
import { claims } from './testing/fixtures.js';

describe('capability claims', () => {
  it('accepts the fixture and refuses unknown fields at every level', () => {
    expect(capabilityClaimsSchema.safeParse(claims()).success).toBe(true);
    expect(capabilityClaimsSchema.safeParse({ ...claims(), extra: 1 }).success).toBe(false);
    const c = claims();
    expect(capabilityClaimsSchema.safeParse({ ...c, binding: { ...c.binding, extra: 1 } }).success).toBe(false);
    expect(capabilityClaimsSchema.safeParse({ ...c, purpose: 'ticket' }).success).toBe(false);
    expect(capabilityClaimsSchema.safeParse({ ...c, grants: [c.grants[0], c.grants[0]] }).success).toBe(false);
  });

  it('only takes canonical origins', () => {
    expect(isCanonicalOrigin('https://api.openai.com')).toBe(true);
    expect(isCanonicalOrigin('https://api.example.com:8443')).toBe(true);
    for (const bad of ['https://API.openai.com', 'https://api.openai.com/', 'https://api.openai.com:443', 'https://u@api.openai.com', 'https://api.openai.com.', 'ftp://x.test', 'https://bücher.example']) {
      expect(isCanonicalOrigin(bad), bad).toBe(false);
    }
  });

  it('allows http targets only for listed development hosts', () => {
    expect(isAllowedTargetOrigin('https://api.openai.com')).toBe(true);
    expect(isAllowedTargetOrigin('http://api.openai.com')).toBe(false);
    expect(isAllowedTargetOrigin('http://localhost:8080', { httpHosts: ['localhost'] })).toBe(true);
    expect(isAllowedTargetOrigin('http://localhost:8080/x', { httpHosts: ['localhost'] })).toBe(false);
  });

  it('only takes plain path prefixes', () => {
    for (const good of ['/', '/v1/', '/v1/chat/completions', '/api/sessions/ses_A/events']) expect(isPlainPathPrefix(good), good).toBe(true);
    for (const bad of ['', 'v1', '/v1//x', '/v1/../x', '/./x', '/v1/%2e', '/a\\b', '/a b']) expect(isPlainPathPrefix(bad), bad).toBe(false);
  });
});
