/**
 * A body refused as too large is usually still on its way when the refusal is ready. Answering at
 * once and closing the connection (as the framework does, since the client may send more) resets it
 * under a client that is still writing, and that client then sees a broken pipe instead of the 413.
 * So the rest of such a body is read and dropped first — up to a bound in bytes and in time, past
 * which the client is cut off as before: a refusal never costs more than reading a body twice the
 * route's limit (at least 8 MiB, at most 64 MiB) for at most 10 s.
 */
import type { FastifyRequest } from 'fastify';

const MIN_DRAIN_BYTES = 8 * 1024 * 1024;
const MAX_DRAIN_BYTES = 64 * 1024 * 1024;
const MAX_DRAIN_MS = 10_000;

/** Resolves once the refused body has arrived (or the bound was reached); null when nothing is left to wait for. */
export function drainRefusedBody(request: FastifyRequest): Promise<void> | null {
  const raw = request.raw;
  if (raw.complete || raw.destroyed) return null;
  const bound = Math.min(MAX_DRAIN_BYTES, Math.max(MIN_DRAIN_BYTES, 2 * (request.routeOptions.bodyLimit ?? 0)));
  const declared = Number(raw.headers['content-length']);
  // A declared length past the bound is not worth reading: answer and close at once.
  if (Number.isFinite(declared) && declared > bound) return null;
  return new Promise<void>((resolve) => {
    let seen = 0;
    const finish = (): void => {
      clearTimeout(timer);
      raw.off('data', onData);
      raw.off('end', finish);
      raw.off('error', finish);
      raw.off('close', finish);
      resolve();
    };
    const onData = (chunk: Buffer): void => {
      seen += chunk.length;
      if (seen > bound) finish();
    };
    const timer = setTimeout(finish, MAX_DRAIN_MS);
    timer.unref();
    raw.on('data', onData);
    raw.once('end', finish);
    raw.once('error', finish);
    raw.once('close', finish);
    raw.resume();
  });
}
