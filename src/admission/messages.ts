/** Pub/sub messages of admission are JSON objects; anything else on a channel is dropped. */
export function parseMessageObject(message: string): Record<string, unknown> | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch {
    return null;
  }
  return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : null;
}
