/**
 * Turning a refusal into an HTTP answer. Handlers call `sendRefusal` with their own renderer (the
 * model routes answer in the provider's envelope), so every refusal carries the same status,
 * `Retry-After` and rate-limit headers whatever the route's body format.
 */
import type { FastifyReply } from 'fastify';
import { AppError } from '../core/errors.js';
import { renderPortcullisError, type ErrorRenderer } from '../http/errors.js';
import type { Refusal } from './types.js';

/** The refusal as an AppError (public message, gate and limit as details, never a secret). */
export function refusalToError(refusal: Refusal): AppError {
  const details: Record<string, string | number | boolean> = { gate: refusal.gate };
  for (const [name, value] of Object.entries(refusal.limit ?? {})) details[`limit_${name}`] = value;
  return new AppError(refusal.code, {
    message: refusal.message,
    details,
    ...(refusal.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: refusal.retryAfterSeconds }),
  });
}

export function applyAdmissionHeaders(reply: FastifyReply, headers: Record<string, string>): void {
  for (const [name, value] of Object.entries(headers)) reply.header(name, value);
}

export function sendRefusal(reply: FastifyReply, refusal: Refusal, headers: Record<string, string>, render: ErrorRenderer = renderPortcullisError): FastifyReply {
  applyAdmissionHeaders(reply, headers);
  if (refusal.retryAfterSeconds !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(refusal.retryAfterSeconds))));
  // The refusal's own status wins over the table's (e.g. budget refusals may be 402 or 429).
  return reply.code(refusal.status).type('application/json').send(render(refusalToError(refusal)));
}
