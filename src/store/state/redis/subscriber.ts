/**
 * Pub/sub on a dedicated connection (a subscribed Redis connection can run nothing else). The
 * connection is opened on first subscribe; ioredis resubscribes every channel after a reconnect.
 * Messages published while the connection is down are lost: pub/sub is at most once by design.
 */
import type { Redis } from 'ioredis';
import type { MessageHandler } from '../port.js';
import { classifyRedisError, connectClient } from './connection.js';

export class RedisSubscriber {
  private readonly handlers = new Map<string, Set<MessageHandler>>();
  private connection: Promise<Redis> | undefined;
  private closed = false;

  constructor(private readonly open: () => Promise<Redis>) {}

  static forClient(main: Redis, url: string): RedisSubscriber {
    return new RedisSubscriber(async () => {
      const name = main.options.connectionName;
      return connectClient(url, { ...main.options, ...(name === undefined ? {} : { connectionName: `${name}-sub` }) });
    });
  }

  /** Resolves once Redis has acknowledged the subscription. */
  async subscribe(channel: string, handler: MessageHandler): Promise<() => Promise<void>> {
    const conn = await this.client();
    // Wrapped so the same function subscribed twice holds two independent subscriptions.
    const own: MessageHandler = (message) => handler(message);
    let set = this.handlers.get(channel);
    if (set === undefined) {
      set = new Set();
      this.handlers.set(channel, set);
    }
    set.add(own);
    try {
      await conn.subscribe(channel);
    } catch (err) {
      await this.remove(conn, channel, own);
      throw classifyRedisError(err);
    }
    let active = true;
    return async () => {
      if (!active) return;
      active = false;
      await this.remove(conn, channel, own);
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.handlers.clear();
    const pending = this.connection;
    this.connection = undefined;
    if (pending === undefined) return;
    const conn = await pending.catch(() => undefined);
    if (conn === undefined) return;
    await conn.quit().catch(() => conn.disconnect());
  }

  private async remove(conn: Redis, channel: string, handler: MessageHandler): Promise<void> {
    const set = this.handlers.get(channel);
    set?.delete(handler);
    if (set === undefined || set.size > 0) return;
    this.handlers.delete(channel);
    if (this.closed) return;
    // The handler is already gone locally, which is what the caller asked for. If Redis cannot be
    // told now (offline), a later resubscription only brings messages that nobody handles.
    await conn.unsubscribe(channel).catch(() => undefined);
  }

  private client(): Promise<Redis> {
    if (this.closed) return Promise.reject(classifyRedisError(new Error('subscriber closed')));
    if (this.connection === undefined) {
      const opening = this.open().then((conn) => {
        conn.on('message', (channel: string, message: string) => this.deliver(channel, message));
        return conn;
      });
      // A failed first connection is forgotten so the next subscribe tries again.
      opening.catch(() => {
        if (this.connection === opening) this.connection = undefined;
      });
      this.connection = opening;
    }
    return this.connection;
  }

  private deliver(channel: string, message: string): void {
    const set = this.handlers.get(channel);
    if (set === undefined) return;
    for (const handler of [...set]) {
      try {
        handler(message);
      } catch {
        // One failing subscriber must not stop delivery to the others.
      }
    }
  }
}
