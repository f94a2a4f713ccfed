/**
 * The hot-state store: port, adapters and the factory the gateway uses.
 *
 * Detecting "store unreachable": every method rejects with `HotStateUnavailable` (an AppError with
 * code `dependency_unavailable`, HTTP 503) when Redis cannot be reached or is failing over; test it
 * with `isHotStateUnavailable(err)`. Any other rejection is a bug (AppError `internal`).
 */
import type { Clock } from '../../core/clock.js';
import { MemoryHotState } from './memory/memory-hot-state.js';
import type { HotState } from './port.js';

export type * from './port.js';
export { REQUEUE_OUTBOX_TYPE } from './port.js';
export { HotStateUnavailable, isHotStateUnavailable } from './errors.js';
export { LIMITS as HOT_STATE_LIMITS } from './validation.js';
export { MemoryHotState, type MemoryHotStateOptions } from './memory/memory-hot-state.js';
// The Redis adapter (and its client library) loads only when a URL asks for it: the embedded
// deployment never needs it. Import `RedisHotState` from './redis/redis-hot-state.js' directly.
export type { RedisHotState, RedisHotStateOptions } from './redis/redis-hot-state.js';

export interface CreateHotStateOptions {
  /** Redis URL; without it the in-process store is used (single replica only). */
  redisUrl?: string;
  /** Redis key and channel prefix (default `pc`). */
  prefix?: string;
  /** Time source of the memory store (Redis always uses its own TIME). */
  clock?: Clock;
}

/** Memory without a URL; otherwise connects to Redis and throws HotStateUnavailable if it cannot. */
export async function createHotState(options: CreateHotStateOptions = {}): Promise<HotState> {
  if (options.redisUrl === undefined || options.redisUrl === '') {
    return new MemoryHotState(options.clock === undefined ? {} : { clock: options.clock });
  }
  const { RedisHotState } = await import('./redis/redis-hot-state.js');
  return RedisHotState.connect({ url: options.redisUrl, ...(options.prefix === undefined ? {} : { prefix: options.prefix }) });
}
