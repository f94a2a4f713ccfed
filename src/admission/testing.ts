/** Test helpers for admission: a hot state that can be "taken down", principals, a fake economics gate. */
import { HotStateUnavailable } from '../store/state/errors.js';
import type { HotState } from '../store/state/port.js';
import type { Principal, PrincipalUserType } from '../identity/principal.js';
import { admissionConfigSchema, type AdmissionConfig } from './config.js';
import { admissionScope } from './scope.js';
import type { AdmissionRequest, EconomicsGate, EconomicsPlan, Refusal, SettleOutcome } from './types.js';

/** Wraps a store so every call throws HotStateUnavailable while `down` is true (like Redis stopped). */
export function switchableState(inner: HotState): { state: HotState; setDown(down: boolean): void; calls(): number } {
  let down = false;
  let calls = 0;
  const state = new Proxy(inner, {
    get(target, property, receiver) {
      // A store that can go away stands for the remote one (only that one sits behind a breaker).
      if (property === 'kind') return 'redis';
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || property === 'close') return value;
      return (...args: unknown[]) => {
        calls += 1;
        if (down) return Promise.reject(new HotStateUnavailable(new Error('connection refused')));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { state, setDown: (d) => (down = d), calls: () => calls };
}

/** Wraps a store so every method call is recorded by name in `calls` (each one a round trip on Redis). */
export function countingState(inner: HotState, calls: string[], skip: readonly string[] = []): HotState {
  return new Proxy(inner, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      return (...args: unknown[]) => {
        if (!skip.includes(property)) calls.push(property);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

export function testAdmissionConfig(overrides: Record<string, unknown> = {}): AdmissionConfig {
  return admissionConfigSchema.parse(overrides);
}

let counter = 0;
export function admissionPrincipal(userType: PrincipalUserType, overrides: Partial<Principal> = {}): Principal {
  counter += 1;
  const anonymous = userType === 'anonymous';
  return {
    kind: anonymous ? 'anonymous' : 'api_key',
    id: anonymous ? `anon:10.0.0.${counter % 250}` : `key_${counter}`,
    userId: anonymous ? null : `usr_${counter}`,
    orgId: anonymous ? null : 'org_a',
    role: anonymous ? null : 'member',
    userType,
    platformAdmin: false,
    scopes: anonymous ? [] : ['models', 'tasks'],
    ip: '10.0.0.1',
    ...(anonymous ? {} : { keyId: `key_${counter}` }),
    ...overrides,
  };
}

export function admissionRequest(principal: Principal, overrides: Partial<AdmissionRequest> = {}): AdmissionRequest {
  counter += 1;
  return { principal, route: '/v1/chat/completions', requestId: `req_${counter}`, kind: 'sync', ...overrides };
}

/** An economics gate that records what the pipeline asks of it; it reserves nothing in the store. */
export class FakeEconomics implements EconomicsGate {
  readonly reserved: string[] = [];
  readonly settled: { requestId: string; outcome: SettleOutcome }[] = [];
  refuseWith: Refusal | null = null;
  plan(request: AdmissionRequest): EconomicsPlan {
    if (this.refuseWith !== null) return { ok: false, refusal: this.refuseWith };
    return {
      ok: true,
      scope: admissionScope(request.principal),
      reservations: [],
      refused: (outcome) => {
        if (outcome.refusedBy !== 'unavailable') throw new Error('FakeEconomics reserves nothing, so the store cannot refuse it');
        return { gate: 'economics', code: 'dependency_unavailable', status: 503, message: 'budgets cannot be checked' };
      },
      held: () => {
        this.reserved.push(request.requestId);
        return async (outcome) => {
          this.settled.push({ requestId: request.requestId, outcome });
        };
      },
    };
  }
}
