import { describe, expect, it } from 'vitest';
import { parseAdmissionConfig } from './config.js';
import { createRoutePolicy } from './route-policy.js';

describe('admission config', () => {
  it('has the documented defaults', () => {
    const config = parseAdmissionConfig(undefined);
    expect(config.rateLimits).toEqual({
      anonymous: { burst: 10, burstWindowSeconds: 60, hourly: 120 },
      registered: { burst: 100, burstWindowSeconds: 60, hourly: 2000 },
      paid: { burst: 150, burstWindowSeconds: 60, hourly: 4000 },
      privileged: { burst: 300, burstWindowSeconds: 60, hourly: null },
    });
    expect(config.backpressure.thresholds).toEqual({ anonymous: 0.6, registered: 0.8, paid: 0.9, hard: 0.95 });
  });

  it('validates threshold order and names the key', () => {
    const bad = (thresholds: Record<string, number>) => () => parseAdmissionConfig({ backpressure: { thresholds } });
    expect(bad({ anonymous: 0.8, registered: 0.8, paid: 0.9, hard: 0.95 })).toThrow('admission.backpressure.thresholds.anonymous: must be below registered');
    expect(bad({ anonymous: 0.5, registered: 0.9, paid: 0.8, hard: 0.95 })).toThrow('admission.backpressure.thresholds.registered');
    expect(bad({ anonymous: 0.5, registered: 0.8, paid: 0.95, hard: 0.95 })).toThrow('admission.backpressure.thresholds.paid');
    expect(bad({ anonymous: 0.5, registered: 0.8, paid: 0.9, hard: 1.1 })).toThrow('admission.backpressure.thresholds.hard');
    expect(parseAdmissionConfig({ backpressure: { thresholds: { anonymous: 0.5, registered: 0.8, paid: 0.8, hard: 1 } } }).backpressure.thresholds.hard).toBe(1);
  });

  it('refuses an invalid route pattern, naming its index', () => {
    expect(() => parseAdmissionConfig({ routes: { guard: ['^/ok$', '(unclosed'] } })).toThrow('admission.routes.guard[1]: must be a valid regular expression');
    expect(() => parseAdmissionConfig({ rateLimits: { paid: { burst: 0, burstWindowSeconds: 60, hourly: 1 } } })).toThrow('admission.rateLimits.paid.burst');
    expect(() => parseAdmissionConfig({ unknown: 1 })).toThrow('admission');
  });

  it('refuses text the record store cannot keep: a NUL or a lone surrogate in a pattern or a key id', () => {
    const unstorable = 'must not contain a NUL character or a lone surrogate';
    expect(() => parseAdmissionConfig({ routes: { bypass: ['^/hooks\ud800$'] } })).toThrow(`admission.routes.bypass[0]: ${unstorable}`);
    expect(() => parseAdmissionConfig({ routes: { guard: ['^/a\u0000$'] } })).toThrow(`admission.routes.guard[0]: ${unstorable}`);
    expect(() => parseAdmissionConfig({ keyOverrides: { 'key_\udc00': { burst: 5, burstWindowSeconds: 60, hourly: null } } })).toThrow('admission.keyOverrides["key_\\udc00"]: the key is not allowed: must not contain a NUL character or a lone surrogate');
    // A well-formed pair (an emoji) is ordinary text.
    expect(parseAdmissionConfig({ routes: { bypass: ['^/\u{1F600}$'] } }).routes.bypass).toEqual(['^/\u{1F600}$']);
  });
});

describe('route policy', () => {
  it('always guards model and task ingress, even against a bypass pattern', () => {
    const policy = createRoutePolicy({ guard: ['^/api/orgs/:orgId/exports$'], bypass: ['^/v1/', '^/api/tasks', '^/hooks/', 'tasks'] });
    expect(policy.classify('/api/orgs/:orgId/tasks')).toBe('full');
    expect(policy.classify('/v1/chat/completions')).toBe('full');
    expect(policy.classify('/v1')).toBe('full');
    expect(policy.classify('/api/tasks/:taskId')).toBe('full');
    expect(policy.classify('/api/orgs/:orgId/exports')).toBe('full');
    expect(policy.classify('/hooks/stripe')).toBe('bypass');
    expect(policy.classify('/api/orgs/:orgId')).toBe('authenticate_only');
    expect(policy.classify('/v10/x')).toBe('authenticate_only');
  });
});
