/**
 * For tests: an in-process pub/sub bus several caches can share (like replicas sharing Redis), with
 * a switch that silently drops deliveries to simulate a lost message or a deaf subscription.
 */
import type { MessageHandler } from '../../store/state/port.js';
import type { IdentityPubSub } from './identity-cache.js';

export class TestBus implements IdentityPubSub {
  private readonly handlers = new Map<string, Set<MessageHandler>>();
  /** While true, publishes succeed but nobody hears them. */
  dropping = false;
  published = 0;

  async publish(channel: string, message: string): Promise<void> {
    this.published++;
    if (this.dropping) return;
    for (const handler of [...(this.handlers.get(channel) ?? [])]) queueMicrotask(() => handler(message));
  }

  async subscribe(channel: string, handler: MessageHandler): Promise<() => Promise<void>> {
    const own: MessageHandler = (message) => handler(message);
    const set = this.handlers.get(channel) ?? new Set<MessageHandler>();
    set.add(own);
    this.handlers.set(channel, set);
    return async () => {
      set.delete(own);
    };
  }
}
