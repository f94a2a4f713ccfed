/** How an upstream call failed before an answer arrived; `kind` decides fallback and the status shown. */
import { EgressRefusedError, type ResolveRefusal } from './resolve.js';

export type UpstreamFailure = 'timeout' | 'network' | 'egress_refused';

export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  constructor(
    readonly kind: UpstreamFailure,
    message: string,
    /** For `egress_refused` by the outbound guard: why (audited by the egress proxy). */
    readonly refusal?: ResolveRefusal,
  ) {
    super(message);
  }
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

function findEgressRefusal(error: unknown): EgressRefusedError | null {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth += 1) {
    if (current instanceof EgressRefusedError) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return null;
}

/** Never carries the URL, a header or the driver's own message (which may name the host). */
export function classifyUpstreamError(error: unknown): UpstreamError {
  if (error instanceof UpstreamError) return error;
  const refusal = findEgressRefusal(error);
  if (refusal !== null) return new UpstreamError('egress_refused', refusal.message, refusal.reason);
  const code = (error as { code?: unknown } | null)?.code;
  const name = (error as { name?: unknown } | null)?.name;
  if ((typeof code === 'string' && TIMEOUT_CODES.has(code)) || name === 'TimeoutError') return new UpstreamError('timeout', 'the provider did not answer in time');
  return new UpstreamError('network', typeof code === 'string' ? `connection failed (${code})` : 'connection failed');
}
