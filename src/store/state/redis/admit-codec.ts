/**
 * Encoding of the admit and settle steps into batches of script KEYS/ARGV and decoding of each
 * step's reply (the layouts are documented with the scripts; batching is step-batch.ts). A reply of
 * an unexpected shape is a bug, reported as an internal error.
 */
import { storeFailure } from '../errors.js';
import type { AdmitRequest, AdmitResult, SettleManyResult, SettleResult, Settlement, WindowDecision, WindowSpec } from '../port.js';
import { LIMITS } from '../validation.js';
import type { RedisKeys } from './keys.js';
import type { ScriptArg } from './lua-script.js';
import type { BatchedSteps } from './step-batch.js';
import { asArray, asInt, asString } from './replies.js';

const REFUSED_AFTER = { windows: 'w', reservations: 'r' } as const;

/** Admit steps (requests' windows and reservations) as the admit script takes them in batches. */
export function admitSteps(keys: RedisKeys): BatchedSteps<AdmitRequest, AdmitResult> {
  return {
    head: (scope) => ({ keys: [keys.reservationIndex(scope)], args: [0, LIMITS.reapOnRefusal, keys.reservationPrefix(scope), keys.linePrefix(scope)] }),
    append: (scope, request, scriptKeys, args) => appendAdmit(keys, scope, request, scriptKeys, args),
    decode: decodeAdmit,
  };
}

/** Settlement steps (one call's reservations each) as the settle script takes them in batches. */
export function settleSteps(keys: RedisKeys): BatchedSteps<Settlement[], SettleManyResult> {
  return {
    head: (scope) => ({ keys: [keys.reservationIndex(scope)], args: [0, keys.linePrefix(scope)] }),
    append(scope, settlements, scriptKeys, args) {
      args.push(settlements.length);
      for (const s of settlements) {
        scriptKeys.push(keys.reservationPrefix(scope) + s.reservationId);
        args.push(s.reservationId, s.commit === null ? 'x' : 'c', s.commit === null ? '' : s.commit.join(','));
      }
    },
    decode: (_settlements, reply) => decodeSettlements(reply),
  };
}

/** Appends one admit step's keys and arguments to a batch of its scope. */
function appendAdmit(keys: RedisKeys, scope: string, request: AdmitRequest, scriptKeys: string[], args: ScriptArg[]): void {
  const windows = request.windows;
  const specs = windows?.specs ?? [];
  args.push(specs.length, windows?.cost ?? 1, request.refusedAfter === undefined ? '' : REFUSED_AFTER[request.refusedAfter], request.reservations.length);
  for (const w of specs) {
    scriptKeys.push(keys.windowLog(scope, w.name, windows?.key ?? ''), keys.windowTotal(scope, w.name, windows?.key ?? ''));
    args.push(w.limit, w.windowMs);
  }
  for (const r of request.reservations) {
    scriptKeys.push(keys.reservationPrefix(scope) + r.reservationId);
    for (const line of r.lines) scriptKeys.push(keys.linePrefix(scope) + line.key);
    args.push(r.reservationId, r.amounts.join(','), r.ttlMs, r.lines.length);
    for (const line of r.lines) args.push(line.key, line.cap, line.expiresAt, line.amountIndex ?? 0);
  }
}

export function decodeAdmit(request: AdmitRequest, raw: unknown): AdmitResult {
  const reply = asArray(raw);
  const outcome = asString(reply[0]);
  const reaped = asInt(reply[1]);
  const now = asInt(reply[2]);
  const windows = asInt(reply[3]) > 0 ? decodeWindow(request.windows?.specs ?? [], reply[3], reply.slice(4, 8), now) : undefined;
  const base = { reaped, now, ...(windows === undefined ? {} : { windows }) };
  switch (outcome) {
    case 'ok':
      return { ok: true, ...base };
    case 'windows':
      if (windows === undefined) break;
      return { ok: false, refusedBy: 'windows', ...base };
    case 'caller':
      return { ok: false, refusedBy: 'caller', ...base };
    case 'duplicate':
      return { ok: false, refusedBy: 'duplicate', reservation: asInt(reply[8]) - 1, ...base };
    case 'exceeded': {
      const reservation = asInt(reply[8]) - 1;
      const line = request.reservations[reservation]?.lines[asInt(reply[9]) - 1];
      if (line === undefined) break;
      return { ok: false, refusedBy: 'exceeded', reservation, key: line.key, cap: line.cap, used: asInt(reply[10]), reserved: asInt(reply[11]), ...base };
    }
  }
  throw storeFailure(new Error('admit script answered an unknown outcome'));
}

/**
 * A window decision from a script reply: `index` is the 1-based window, `fields` are allowed (0|1),
 * remaining, resetAt and retryAfterMs, in that order.
 */
export function decodeWindow(specs: WindowSpec[], index: unknown, fields: unknown[], now: number): WindowDecision {
  const spec = specs[asInt(index) - 1];
  if (spec === undefined) throw storeFailure(new Error('window script answered an unknown window'));
  return {
    allowed: asInt(fields[0]) === 1,
    window: spec.name,
    limit: spec.limit,
    remaining: asInt(fields[1]),
    resetAt: asInt(fields[2]),
    retryAfterMs: asInt(fields[3]),
    now,
  };
}

/** `amounts`: the settled amounts as the reservation record keeps them, comma-separated. */
export function decodeSettleResult(state: string, amounts: unknown): SettleResult {
  if (state === 'unknown' || state === 'mismatch') return { ok: false, reason: state };
  if (state === 'committed' || state === 'released' || state === 'already_committed' || state === 'already_released') {
    return { ok: true, state, amounts: asString(amounts).split(',').map(asInt) };
  }
  throw storeFailure(new Error('settle script answered an unknown state'));
}

export function decodeSettlements(raw: unknown): SettleManyResult {
  const [states, used] = asArray(raw).map(asArray);
  if (states === undefined || used === undefined) throw storeFailure(new Error('settle script answered an unknown shape'));
  const results: SettleResult[] = [];
  for (let i = 0; i < states.length; i += 2) results.push(decodeSettleResult(asString(states[i]), states[i + 1]));
  const lines: SettleManyResult['used'] = [];
  for (let i = 0; i < used.length; i += 2) lines.push({ key: asString(used[i]), used: asInt(used[i + 1]) });
  return { results, used: lines };
}
