/**
 * What features depend on to record an audit event. The hash-chained log implements it; tests may
 * use an in-memory sink. Details must never contain a secret, token or key material.
 */
export type AuditOutcome = 'success' | 'failure' | 'denied';

export interface AuditEventInput {
  /** Who did it: a user id, `key:<id>`, `anon:<ip>`, or `system`. */
  actor: string;
  orgId: string | null;
  /** Dotted verb, e.g. `org.create`, `member.role_change`, `key.revoke`, `settings.update`. */
  action: string;
  target?: string | null;
  outcome: AuditOutcome;
  details?: Record<string, string | number | boolean | null>;
}

export interface AuditSink {
  record(event: AuditEventInput): Promise<void>;
}

/** Keeps events in memory; for unit tests of features that audit. */
export class MemoryAuditSink implements AuditSink {
  readonly events: AuditEventInput[] = [];
  async record(event: AuditEventInput): Promise<void> {
    this.events.push(event);
  }
}
