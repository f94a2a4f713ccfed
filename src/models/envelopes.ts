/**
 * Errors on the model routes in the provider's own envelope, so the official SDKs raise their
 * usual error classes; Portcullis' stable code rides inside as `code`.
 */
import type { AppError } from '../core/errors.js';

function openAiType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 402) return 'insufficient_quota';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

function anthropicType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 413) return 'request_too_large';
  if (status === 429) return 'rate_limit_error';
  if (status === 503) return 'overloaded_error';
  if (status >= 500) return 'api_error';
  return 'invalid_request_error';
}

export function openAiErrorBody(error: AppError): unknown {
  return { error: { message: error.message, type: openAiType(error.status), param: null, code: error.code, ...(error.details ?? {}) } };
}

export function anthropicErrorBody(error: AppError): unknown {
  return { type: 'error', error: { type: anthropicType(error.status), message: error.message, code: error.code, ...(error.details ?? {}) } };
}
