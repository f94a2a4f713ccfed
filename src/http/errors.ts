/**
 * Maps anything thrown during a request to the one JSON error shape. AppError keeps its code;
 * Fastify's own errors (body too large, bad JSON, wrong content type) get stable codes; anything
 * else is a generic 500 whose details go to the log only.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, errorBody, type ErrorCode } from '../core/errors.js';
import { isUnstorableTextError } from '../store/db/errors.js';
import { drainRefusedBody } from './refused-body.js';

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad_request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'bad_request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'bad_request',
  FST_ERR_VALIDATION: 'validation_failed',
};

export function toAppError(error: unknown): AppError | null {
  if (error instanceof AppError) return error;
  if (typeof error === 'object' && error !== null) {
    const fastifyError = error as Partial<FastifyError>;
    const mapped = fastifyError.code === undefined ? undefined : FASTIFY_CODES[fastifyError.code];
    if (mapped !== undefined) return new AppError(mapped);
    // JSON.parse failures surface as SyntaxError with statusCode 400.
    if (error instanceof SyntaxError && fastifyError.statusCode === 400) return new AppError('bad_request', { message: 'The request body is not valid JSON.' });
    if (fastifyError.statusCode === 413) return new AppError('payload_too_large');
    if (fastifyError.statusCode === 415) return new AppError('unsupported_media_type');
    // Validation lets a NUL or a lone surrogate through (both are valid JSON, and a NUL valid in a URL); the store refuses them.
    if (isUnstorableTextError(error)) return new AppError('validation_failed', { message: 'The request carries a NUL character or a lone surrogate, which no text field may hold.' });
  }
  return null;
}

/** Route-specific error rendering (the model routes answer in the provider's own envelope). */
export type ErrorRenderer = (error: AppError) => unknown;

export const renderPortcullisError: ErrorRenderer = (error) => errorBody(error);

export function sendError(request: FastifyRequest, reply: FastifyReply, error: unknown, render: ErrorRenderer): FastifyReply {
  const appError = toAppError(error) ?? new AppError('internal', { cause: error });
  if (appError.code === 'internal') {
    request.log.error({ reqId: request.id, err: error }, 'unhandled error');
  } else if (appError.status >= 500) {
    request.log.warn({ reqId: request.id, code: appError.code }, 'request refused');
  }
  if (appError.retryAfterSeconds !== undefined) {
    reply.header('retry-after', String(Math.max(1, Math.ceil(appError.retryAfterSeconds))));
  }
  return reply.code(appError.status).type('application/json').send(render(appError));
}

/**
 * The error handlers' entry: sendError, but when the body was refused as too large, only once the
 * rest of it has arrived (refused-body.ts), so the client reads the 413 instead of a reset.
 */
export function answerError(request: FastifyRequest, reply: FastifyReply, error: unknown, render: ErrorRenderer): Promise<void> | undefined {
  // Resolved once here; sendError takes an AppError as it is.
  const resolved = toAppError(error) ?? error;
  const draining = resolved instanceof AppError && resolved.code === 'payload_too_large' ? drainRefusedBody(request) : null;
  if (draining === null) {
    sendError(request, reply, resolved, render);
    return undefined;
  }
  return draining.then(() => {
    sendError(request, reply, resolved, render);
  });
}
