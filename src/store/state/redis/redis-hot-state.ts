/**
 * The distributed hot-state adapter. Every multi-step operation is one Lua script (atomic on the
 * server, time from the server's TIME), every script touches one hash-tagged slot, and every
 * failure to reach Redis surfaces as HotStateUnavailable.
 */
import type { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { invalidArgument, storeFailure } from '../errors.js';
import { REQUEUE_OUTBOX_TYPE } from '../port.js';
import type {
  AdmitRequest,
  AdmitResult,
  BudgetUsage,
  ClaimedItem,
  EnqueueGuard,
  EnqueueResult,
  HotState,
  MessageHandler,
  OutboxEntry,
  PresenceMember,
  QueueItem,
  QueueItemState,
  ReserveRequest,
  ReserveResult,
  SettleManyResult,
  SettleResult,
  Settlement,
  WindowDecision,
  WindowSpec,
} from '../port.js';
import {
  checkAdmit,
  checkChannel,
  checkHeartbeat,
  checkAmounts,
  checkKey,
  checkOutboxBatch,
  checkOutboxEvent,
  checkQueueItem,
  checkReserve,
  checkScope,
  checkSettlements,
  checkTtl,
  checkValue,
  checkWindows,
  LIMITS,
} from '../validation.js';
import { admitSteps, decodeSettleResult, decodeWindow, settleSteps } from './admit-codec.js';
import { admitScript, heartbeatScript } from './admit-script.js';
import { reapScript, reserveScript, settleManyScript, settleScript } from './budget-scripts.js';
import { connectClient, guarded, redisClientOptions, type RedisConnectionOptions } from './connection.js';
import { incrementScript } from './counter-script.js';
import { queueKeyList, RedisKeys } from './keys.js';
import { claimScript, completeScript, enqueueScript, itemStateScript, loadScript, renewScript, requeueScript } from './queue-scripts.js';
import { RedisSubscriber } from './subscriber.js';
import { asArray, asInt, asString } from './replies.js';
import { StepBatcher } from './step-batch.js';
import { hitWindowsScript } from './window-script.js';

export interface RedisHotStateOptions extends RedisConnectionOptions {
  url: string;
  /** Key and channel prefix (default `pc`); tests use a unique one per run. */
  prefix?: string;
}

export class RedisHotState implements HotState {
  readonly kind = 'redis' as const;
  readonly keys: RedisKeys;
  readonly #admits: StepBatcher<AdmitRequest, AdmitResult>;
  readonly #settlements: StepBatcher<Settlement[], SettleManyResult>;

  private constructor(
    private readonly redis: Redis,
    private readonly subscriber: RedisSubscriber,
    prefix: string,
  ) {
    this.keys = new RedisKeys(prefix);
    this.#admits = new StepBatcher(admitSteps(this.keys), (keys, args) => guarded(() => admitScript.run(redis, keys, args)));
    this.#settlements = new StepBatcher(settleSteps(this.keys), (keys, args) => guarded(() => settleManyScript.run(redis, keys, args)));
  }

  /** Connects and waits until Redis answers; throws HotStateUnavailable when it cannot. */
  static async connect(options: RedisHotStateOptions): Promise<RedisHotState> {
    const prefix = options.prefix ?? 'pc';
    const keys = new RedisKeys(prefix);
    const connectionName = options.connectionName ?? `${keys.prefix}-${randomBytes(4).toString('hex')}`;
    const redis = await connectClient(options.url, redisClientOptions({ ...options, connectionName }));
    return new RedisHotState(redis, RedisSubscriber.forClient(redis, options.url), prefix);
  }

  /** The underlying client, for tests and for extensions that add their own scripts. */
  get client(): Redis {
    return this.redis;
  }

  async now(): Promise<number> {
    const [seconds, micros] = await guarded(() => this.redis.time());
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }

  async hitWindows(scope: string, key: string, windows: WindowSpec[], cost = 1): Promise<WindowDecision> {
    checkScope(scope);
    checkKey(key);
    checkWindows(windows, cost);
    const keys = windows.flatMap((w) => [this.keys.windowLog(scope, w.name, key), this.keys.windowTotal(scope, w.name, key)]);
    const args = [cost, windows.length, ...windows.flatMap((w) => [w.limit, w.windowMs])];
    const reply = asArray(await guarded(() => hitWindowsScript.run(this.redis, keys, args)));
    return decodeWindow(windows, reply[1], [reply[0], reply[2], reply[3], reply[4]], asInt(reply[5]));
  }

  async increment(scope: string, key: string, by: number, ttlMs: number): Promise<number> {
    checkScope(scope);
    checkKey(key);
    if (!Number.isSafeInteger(by)) throw invalidArgument('increment must be a safe integer');
    checkTtl(ttlMs);
    return asInt(await guarded(() => incrementScript.run(this.redis, [this.keys.counter(scope, key)], [by, ttlMs])));
  }

  /** Batched with the other admit steps of the scope made in this turn of the event loop (step-batch.ts). */
  async admit(scope: string, request: AdmitRequest): Promise<AdmitResult> {
    checkScope(scope);
    checkAdmit(request);
    return this.#admits.submit(scope, request);
  }

  /** Batched with the other settlements of the scope made in this turn of the event loop (step-batch.ts). */
  async settleReservations(scope: string, settlements: Settlement[]): Promise<SettleManyResult> {
    checkScope(scope);
    checkSettlements(settlements);
    return this.#settlements.submit(scope, settlements);
  }

  async reserve(scope: string, request: ReserveRequest): Promise<ReserveResult> {
    checkScope(scope);
    checkReserve(request);
    const keys = [
      this.keys.reservationPrefix(scope) + request.reservationId,
      this.keys.reservationIndex(scope),
      ...request.lines.map((line) => this.keys.linePrefix(scope) + line.key),
    ];
    const args = [
      request.reservationId,
      request.amounts.join(','),
      request.ttlMs,
      ...request.lines.flatMap((line) => [line.key, line.cap, line.expiresAt, line.amountIndex ?? 0]),
    ];
    const reply = asArray(await guarded(() => reserveScript.run(this.redis, keys, args)));
    const outcome = asString(reply[0]);
    if (outcome === 'ok') return { ok: true };
    if (outcome === 'duplicate') return { ok: false, reason: 'duplicate' };
    const line = request.lines[asInt(reply[1]) - 1];
    if (outcome !== 'exceeded' || line === undefined) throw storeFailure(new Error('reserve script answered an unknown outcome'));
    return { ok: false, reason: 'exceeded', key: line.key, cap: line.cap, used: asInt(reply[2]), reserved: asInt(reply[3]) };
  }

  async commit(scope: string, reservationId: string, actual: number[]): Promise<SettleResult> {
    checkAmounts(actual, 'actual');
    return this.settle(scope, reservationId, 'c', actual.join(','));
  }

  async release(scope: string, reservationId: string): Promise<SettleResult> {
    return this.settle(scope, reservationId, 'x', '');
  }

  async budgetUsage(scope: string, key: string): Promise<BudgetUsage> {
    checkScope(scope);
    checkKey(key);
    const [used, reserved] = await guarded(() => this.redis.hmget(this.keys.linePrefix(scope) + key, 'used', 'reserved'));
    return { used: Number(used ?? 0), reserved: Number(reserved ?? 0) };
  }

  async reapReservations(scope: string): Promise<number> {
    checkScope(scope);
    const args = [this.keys.reservationPrefix(scope), this.keys.linePrefix(scope), LIMITS.requeueBatch];
    return asInt(await guarded(() => reapScript.run(this.redis, [this.keys.reservationIndex(scope)], args)));
  }

  async heartbeat(scope: string, member: string, value: string, ttlMs: number): Promise<PresenceMember[]> {
    checkScope(scope);
    checkHeartbeat(member, value, ttlMs);
    const reply = await guarded(() => heartbeatScript.run(this.redis, this.keys.presence(scope), [member, value, ttlMs, LIMITS.presenceMembers]));
    if (reply === null) throw invalidArgument('presence set is full');
    const flat = asArray(reply);
    const members: PresenceMember[] = [];
    for (let i = 0; i < flat.length; i += 2) members.push({ member: asString(flat[i]), value: asString(flat[i + 1]) });
    return members;
  }

  async get(scope: string, key: string): Promise<string | null> {
    checkScope(scope);
    checkKey(key);
    return guarded(() => this.redis.get(this.keys.value(scope, key)));
  }

  async set(scope: string, key: string, value: string, ttlMs?: number): Promise<void> {
    checkScope(scope);
    checkKey(key);
    checkValue(value);
    const k = this.keys.value(scope, key);
    if (ttlMs === undefined) {
      await guarded(() => this.redis.set(k, value));
    } else {
      checkTtl(ttlMs);
      await guarded(() => this.redis.set(k, value, 'PX', ttlMs));
    }
  }

  async setIfAbsent(scope: string, key: string, value: string, ttlMs: number): Promise<boolean> {
    checkScope(scope);
    checkKey(key);
    checkValue(value);
    checkTtl(ttlMs);
    const reply = await guarded(() => this.redis.set(this.keys.value(scope, key), value, 'PX', ttlMs, 'NX'));
    return reply === 'OK';
  }

  async takeOnce(scope: string, key: string): Promise<string | null> {
    checkScope(scope);
    checkKey(key);
    return guarded(() => this.redis.getdel(this.keys.value(scope, key)));
  }

  async delete(scope: string, key: string): Promise<void> {
    checkScope(scope);
    checkKey(key);
    await guarded(() => this.redis.del(this.keys.value(scope, key)));
  }

  async publish(channel: string, message: string): Promise<void> {
    checkChannel(channel);
    checkValue(message);
    await guarded(() => this.redis.publish(this.keys.channel(channel), message));
  }

  async subscribe(channel: string, handler: MessageHandler): Promise<() => Promise<void>> {
    checkChannel(channel);
    return this.subscriber.subscribe(this.keys.channel(channel), handler);
  }

  async enqueue(queue: string, item: QueueItem, guard?: EnqueueGuard, outboxEvent?: string): Promise<EnqueueResult> {
    checkScope(queue, 'queue');
    checkQueueItem(item, guard, outboxEvent);
    const keys = queueKeyList(this.keys.queue(queue));
    const args = [item.id, item.payload, guard === undefined ? '' : guard.maxLoad, outboxEvent === undefined ? '0' : '1', outboxEvent ?? ''];
    const reply = asArray(await guarded(() => enqueueScript.run(this.redis, keys, args)));
    const outcome = asString(reply[0]);
    if (outcome === 'ok') return { ok: true, depth: asInt(reply[1]) };
    if (outcome === 'duplicate') return { ok: false, reason: 'duplicate' };
    return { ok: false, reason: 'full', load: asInt(reply[1]) };
  }

  async readOutbox(queue: string, max: number): Promise<OutboxEntry[]> {
    checkScope(queue, 'queue');
    checkOutboxBatch(max, 'max');
    const entries = await guarded(() => this.redis.xrange(this.keys.queue(queue).outbox, '-', '+', 'COUNT', max));
    return entries.map(([id, fields]) => ({ id, event: fields[1] ?? '' }));
  }

  async ackOutbox(queue: string, ids: string[]): Promise<number> {
    checkScope(queue, 'queue');
    if (ids.length === 0) return 0;
    checkOutboxBatch(ids.length, 'ids');
    // Stream ids are digits and one dash; anything else was never handed out by readOutbox.
    const valid = ids.filter((id) => /^\d{1,20}-\d{1,20}$/.test(id));
    if (valid.length === 0) return 0;
    return guarded(() => this.redis.xdel(this.keys.queue(queue).outbox, ...valid));
  }

  async claim(queue: string, workerId: string, leaseMs: number): Promise<ClaimedItem | null> {
    checkScope(queue, 'queue');
    checkKey(workerId, 'workerId');
    checkTtl(leaseMs, 'leaseMs');
    const keys = queueKeyList(this.keys.queue(queue));
    const reply = await guarded(() => claimScript.run(this.redis, keys, [workerId, leaseMs]));
    if (reply === null) return null;
    const [id, payload, leaseExpiresAt, attempts] = asArray(reply);
    return { id: asString(id), payload: asString(payload), workerId, leaseExpiresAt: asInt(leaseExpiresAt), attempts: asInt(attempts) };
  }

  async renew(queue: string, itemId: string, workerId: string, leaseMs: number): Promise<boolean> {
    checkScope(queue, 'queue');
    checkKey(itemId, 'item id');
    checkKey(workerId, 'workerId');
    checkTtl(leaseMs, 'leaseMs');
    const keys = queueKeyList(this.keys.queue(queue));
    return asInt(await guarded(() => renewScript.run(this.redis, keys, [itemId, workerId, leaseMs]))) === 1;
  }

  async complete(queue: string, itemId: string, workerId: string, outboxEvent?: string): Promise<boolean> {
    checkScope(queue, 'queue');
    checkKey(itemId, 'item id');
    checkKey(workerId, 'workerId');
    if (outboxEvent !== undefined) checkOutboxEvent(outboxEvent);
    const keys = queueKeyList(this.keys.queue(queue));
    const args = [itemId, workerId, outboxEvent === undefined ? '0' : '1', outboxEvent ?? ''];
    return asInt(await guarded(() => completeScript.run(this.redis, keys, args))) === 1;
  }

  async requeueExpired(queue: string, options: { outbox?: boolean } = {}): Promise<number> {
    checkScope(queue, 'queue');
    const keys = queueKeyList(this.keys.queue(queue));
    const args = [LIMITS.requeueBatch, options.outbox === true ? '1' : '0', REQUEUE_OUTBOX_TYPE];
    return asInt(await guarded(() => requeueScript.run(this.redis, keys, args)));
  }

  async queueItemState(queue: string, itemId: string): Promise<QueueItemState> {
    checkScope(queue, 'queue');
    checkKey(itemId, 'item id');
    const keys = queueKeyList(this.keys.queue(queue));
    const reply = asArray(await guarded(() => itemStateScript.run(this.redis, keys, [itemId])));
    const state = asString(reply[0]);
    if (state === 'held') return { state: 'held', workerId: asString(reply[1]) };
    return state === 'queued' ? { state: 'queued' } : { state: 'absent' };
  }

  async queueLoad(queue: string): Promise<{ queued: number; inFlight: number }> {
    checkScope(queue, 'queue');
    const keys = queueKeyList(this.keys.queue(queue));
    const [queued, inFlight] = asArray(await guarded(() => loadScript.run(this.redis, keys, [])));
    return { queued: asInt(queued), inFlight: asInt(inFlight) };
  }

  async ping(): Promise<void> {
    await guarded(() => this.redis.ping());
  }

  async close(): Promise<void> {
    await this.subscriber.close();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  /** `actuals`: the committed actuals, comma-separated as the reservation record keeps amounts. */
  private async settle(scope: string, reservationId: string, mode: 'c' | 'x', actuals: string): Promise<SettleResult> {
    checkScope(scope);
    checkKey(reservationId, 'reservationId');
    const keys = [this.keys.reservationPrefix(scope) + reservationId, this.keys.reservationIndex(scope)];
    const args = [reservationId, mode, actuals, this.keys.linePrefix(scope)];
    const reply = asArray(await guarded(() => settleScript.run(this.redis, keys, args)));
    return decodeSettleResult(asString(reply[0]), reply[1]);
  }
}
