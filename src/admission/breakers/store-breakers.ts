/**
 * Circuit breakers for the two stores a request touches, one pair per replica, in memory: the
 * hot-state store's breaker cannot live in the hot-state store, and keeping the record store's
 * beside it keeps both decisions free of any round trip. Open means fail fast: the hot state
 * answers `HotStateUnavailable` (the pipeline's 503 `dependency_unavailable`), the record store an
 * AppError `dependency_unavailable`, both with Retry-After = the time until the breaker lets a probe
 * through, instead of every request waiting for a connection or command timeout.
 *
 * Settings (`admission.storeCircuit`) are read live; the composition root points them at the live
 * admission config once it exists.
 */
import type { Clock } from '../../core/clock.js';
import { AppError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { isRefusedForItsData } from '../../store/db/errors.js';
import { HotStateUnavailable, isHotStateUnavailable } from '../../store/state/errors.js';
import type { HotState } from '../../store/state/port.js';
import type { CircuitSettings } from '../config.js';
import { guardCalls } from './guard.js';
import { LocalBreaker } from './local-breaker.js';

export interface StoreBreakers {
  readonly hotState: LocalBreaker;
  readonly records: LocalBreaker;
  /** The hot state with every call but `close` behind the hot-state breaker (Redis); the in-process store is returned as it is. */
  guardHotState(state: HotState): HotState;
  /** An object of record-store reads (e.g. the identity cache's records) behind the record-store breaker. */
  guardRecords<T extends object>(records: T): T;
  /** One record-store call behind the record-store breaker. */
  runRecords<T>(call: () => Promise<T>): Promise<T>;
  /** Where the settings come from from now on (the live admission config). */
  follow(settings: () => CircuitSettings): void;
}

/**
 * A record-store failure is anything thrown, except an application error not about availability
 * and a statement the database answered by refusing its data (a NUL in a name, a duplicate key):
 * counting those would let any caller open the breaker for everyone with a few bad requests.
 */
function isRecordStoreFailure(error: unknown): boolean {
  if (error instanceof AppError) return error.code === 'dependency_unavailable';
  return !isRefusedForItsData(error);
}

function recordsRefused(retryAfterSeconds: number): AppError {
  return new AppError('dependency_unavailable', { message: 'The record store is failing; the request was refused without trying it.', retryAfterSeconds });
}

export function createStoreBreakers(deps: { settings: CircuitSettings; clock: Clock; logger?: Logger }): StoreBreakers {
  let settings: () => CircuitSettings = () => deps.settings;
  const current = () => settings();
  const hotState = new LocalBreaker('hot-state', current, deps.clock, deps.logger);
  const records = new LocalBreaker('record-store', current, deps.clock, deps.logger);
  const recordGuard = { isFailure: isRecordStoreFailure, refuse: recordsRefused };
  const runner = guardCalls({ run: <T>(call: () => Promise<T>): Promise<T> => call() }, records, recordGuard);
  return {
    hotState,
    records,
    // The in-process store cannot become unreachable: guarding it would only cost every call a
    // proxy lookup and an async wrapper.
    guardHotState: (state) =>
      state.kind === 'memory'
        ? state
        : guardCalls(state, hotState, {
            isFailure: isHotStateUnavailable,
            refuse: (retryAfterSeconds) => new HotStateUnavailable(new Error('hot-state circuit breaker is open'), retryAfterSeconds),
            passThrough: ['close'],
          }),
    guardRecords: (target) => guardCalls(target, records, recordGuard),
    runRecords: (call) => runner.run(call),
    follow(next) {
      settings = next;
    },
  };
}
