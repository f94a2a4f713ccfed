/**
 * Redis key layout. Scoped keys are `{prefix}:{<scope>}:<kind>:<key>` and queue keys
 * `{prefix}:{<queue>}:q:<part>`: the braces make the scope (or queue name) the Cluster hash tag, so
 * every key one script touches hashes to one slot. Scopes and queue names never contain braces
 * (validation.ts), so a caller cannot move a key into another scope's slot or name space.
 */
import { invalidArgument } from '../errors.js';

const PREFIX_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

export interface QueueKeys {
  ready: string;
  items: string;
  lease: string;
  holder: string;
  attempts: string;
  /** A stream of events written together with enqueues, completions and requeues (transactional outbox). */
  outbox: string;
}

export class RedisKeys {
  constructor(readonly prefix: string) {
    // The prefix also drives SCAN-based cleanup, so glob characters and braces are refused.
    if (!PREFIX_PATTERN.test(prefix)) throw invalidArgument('prefix must match [A-Za-z0-9_.-]{1,64}');
  }

  scope(scope: string): string {
    return `${this.prefix}:{${scope}}:`;
  }

  windowLog(scope: string, window: string, key: string): string {
    return `${this.scope(scope)}w:${window}:${key}`;
  }

  windowTotal(scope: string, window: string, key: string): string {
    return `${this.scope(scope)}wt:${window}:${key}`;
  }

  counter(scope: string, key: string): string {
    return `${this.scope(scope)}c:${key}`;
  }

  value(scope: string, key: string): string {
    return `${this.scope(scope)}v:${key}`;
  }

  linePrefix(scope: string): string {
    return `${this.scope(scope)}b:`;
  }

  reservationPrefix(scope: string): string {
    return `${this.scope(scope)}r:`;
  }

  reservationIndex(scope: string): string {
    return `${this.scope(scope)}rz`;
  }

  /** Presence set of a scope: members hash and deadlines sorted set. */
  presence(scope: string): [string, string] {
    return [`${this.scope(scope)}p:members`, `${this.scope(scope)}p:deadlines`];
  }

  queue(queue: string): QueueKeys {
    const base = `${this.prefix}:{${queue}}:q:`;
    return {
      ready: `${base}ready`,
      items: `${base}items`,
      lease: `${base}lease`,
      holder: `${base}holder`,
      attempts: `${base}attempts`,
      outbox: `${base}outbox`,
    };
  }

  channel(channel: string): string {
    return `${this.prefix}:ch:${channel}`;
  }
}

export function queueKeyList(keys: QueueKeys): string[] {
  return [keys.ready, keys.items, keys.lease, keys.holder, keys.attempts, keys.outbox];
}
