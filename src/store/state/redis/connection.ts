/**
 * How the adapter talks to Redis when Redis misbehaves. Callers must be able to answer 503 within
 * a request's patience, so nothing waits for a connection: no offline queue, short connect and
 * command timeouts, one retry per command. Reconnection goes on in the background, so service
 * resumes by itself when Redis returns.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { AppError } from '../../../core/errors.js';
import { HotStateUnavailable, storeFailure } from '../errors.js';

export interface RedisConnectionOptions {
  /** Milliseconds to establish a connection (default 2000). */
  connectTimeoutMs?: number;
  /** Milliseconds before a command is abandoned as unavailable (default 2000). */
  commandTimeoutMs?: number;
  /** Client name shown by CLIENT LIST, to find this replica's connections. */
  connectionName?: string;
}

export function redisClientOptions(options: RedisConnectionOptions): RedisOptions {
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    enableReadyCheck: true,
    autoResubscribe: true,
    connectTimeout: options.connectTimeoutMs ?? 2000,
    commandTimeout: options.commandTimeoutMs ?? 2000,
    maxRetriesPerRequest: 1,
    // Commands issued in one turn of the event loop (every request's one admission step, under
    // load) leave in one write; one write per command was the gateway's largest syscall cost.
    enableAutoPipelining: true,
    // Back off up to one second between attempts, forever: a replica must heal without a restart.
    retryStrategy: (attempt: number) => Math.min(50 * 2 ** Math.min(attempt, 5), 1000),
    ...(options.connectionName === undefined ? {} : { connectionName: options.connectionName }),
  };
}

/** Creates a client and waits until it is ready; throws HotStateUnavailable (and cleans up) when it cannot connect. */
export async function connectClient(url: string, options: RedisOptions): Promise<Redis> {
  const client = new Redis(url, options);
  // Without a listener ioredis reports every failed reconnect as an unhandled error; failures
  // reach callers as HotStateUnavailable on the commands that hit them instead.
  client.on('error', () => undefined);
  try {
    await client.connect();
    return client;
  } catch (err) {
    client.disconnect();
    throw new HotStateUnavailable(err);
  }
}

/** Redis replies meaning "not now" (failover, loading, busy script) rather than "you are wrong". */
const TRANSIENT_REPLY = /^(LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY|NOREPLICAS|MOVED|ASK)\b/;

/** Maps a client error to HotStateUnavailable (cannot reach or use the store now) or an internal error (a bug). */
export function classifyRedisError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof Error && err.name === 'ReplyError') {
    return TRANSIENT_REPLY.test(err.message) ? new HotStateUnavailable(err) : storeFailure(err);
  }
  // Connection closed, offline, timed out, retries exhausted: all mean the store is unreachable.
  return new HotStateUnavailable(err);
}

export async function guarded<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (err) {
    throw classifyRedisError(err);
  }
}
