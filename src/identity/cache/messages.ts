/**
 * The identity invalidation messages replicas exchange over hot-state pub/sub. Small, versioned by
 * channel name, validated on receipt: a malformed message is dropped, never trusted.
 */
import { z } from 'zod';

export const IDENTITY_CHANNEL = 'identity:v1';
const MAX_MESSAGE_LENGTH = 1024;

const id = z.string().min(1).max(200);

export const identityMessageSchema = z.discriminatedUnion('t', [
  /** A user's pepper, type, flags changed or the user was deleted: drop the cached user. */
  z.object({ t: z.literal('user'), u: id }).strict(),
  /** A membership was added, changed or removed: drop the cached role. */
  z.object({ t: z.literal('member'), o: id, u: id }).strict(),
  /** A key was revoked: add it to the deny-list until it would have expired anyway. */
  z.object({ t: z.literal('revoke'), k: id, e: z.number().int().nonnegative() }).strict(),
  /** Each replica's own heartbeat, so it notices when its subscription has gone deaf. */
  z.object({ t: z.literal('ping'), i: id }).strict(),
]);

export type IdentityMessage = z.infer<typeof identityMessageSchema>;

export function encodeIdentityMessage(message: IdentityMessage): string {
  return JSON.stringify(message);
}

export function decodeIdentityMessage(raw: string): IdentityMessage | null {
  if (raw.length > MAX_MESSAGE_LENGTH) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return null;
  }
  const result = identityMessageSchema.safeParse(parsed);
  return result.success ? result.data : null;
}
