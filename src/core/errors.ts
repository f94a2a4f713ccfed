/**
 * The one runtime error type and the one table that maps its stable codes to HTTP status and a
 * public message. Misuse at startup is a ConfigError (see config/); everything a request can hit is
 * an AppError. Messages here are public: they must never carry a secret, token or key material.
 */

const ERROR_TABLE = {
  // request shape
  bad_request: { status: 400, message: 'The request is malformed.' },
  validation_failed: { status: 400, message: 'The request body or parameters are invalid.' },
  payload_too_large: { status: 413, message: 'The request body is too large.' },
  unsupported_media_type: { status: 415, message: 'The content type is not supported.' },
  headers_too_large: { status: 431, message: 'The request headers are too large.' },
  request_timeout: { status: 408, message: 'The request took too long to arrive.' },
  not_found: { status: 404, message: 'Not found.' },
  method_not_allowed: { status: 405, message: 'Method not allowed.' },
  conflict: { status: 409, message: 'The request conflicts with the current state.' },
  // identity
  unauthenticated: { status: 401, message: 'Authentication is required.' },
  invalid_credentials: { status: 401, message: 'The credentials are invalid.' },
  invalid_token: { status: 401, message: 'The token is invalid.' },
  token_expired: { status: 401, message: 'The token has expired.' },
  token_revoked: { status: 401, message: 'The token has been revoked.' },
  mfa_required: { status: 401, message: 'A second factor is required.' },
  invalid_mfa_code: { status: 401, message: 'The second-factor code is invalid.' },
  session_expired: { status: 401, message: 'The session has expired.' },
  csrf_failed: { status: 403, message: 'The CSRF token is missing or invalid.' },
  forbidden: { status: 403, message: 'You are not allowed to do this.' },
  account_locked: { status: 429, message: 'Too many failed attempts; try again later.' },
  last_owner: { status: 409, message: 'An organization must keep at least one owner.' },
  credential_unavailable: { status: 503, message: 'No usable credential could be obtained; minting failed and no unexpired stored key is known.' },
  // admission
  rate_limited: { status: 429, message: 'Rate limit exceeded.' },
  overloaded: { status: 503, message: 'The platform is at capacity; try again shortly.' },
  circuit_open: { status: 503, message: 'A dependency is failing; requests are paused.' },
  budget_exceeded: { status: 402, message: 'The budget for this request is exhausted.' },
  queue_full: { status: 503, message: 'The work queue is full.' },
  dependency_unavailable: { status: 503, message: 'A required dependency is unavailable; the request was refused without side effects.' },
  unknown_price: { status: 400, message: 'The model has no known price and unpriced models are not allowed.' },
  // model gateway
  paid_model_auth_required: { status: 401, message: 'This model requires authentication.' },
  free_model_limit_reached: { status: 429, message: 'The free-model limit for this address is reached.' },
  model_not_found: { status: 404, message: 'The model does not exist or is not available to you.' },
  upstream_error: { status: 502, message: 'The upstream provider failed.' },
  upstream_timeout: { status: 504, message: 'The upstream provider timed out.' },
  egress_refused: { status: 403, message: 'The outbound destination is not allowed.' },
  // capabilities
  capability_invalid: { status: 401, message: 'The capability is invalid.' },
  capability_expired: { status: 401, message: 'The capability has expired.' },
  capability_revoked: { status: 401, message: 'The capability has been revoked.' },
  capability_binding_failed: { status: 403, message: 'The capability is not bound to this caller.' },
  route_refused: { status: 403, message: 'The capability does not allow this route.' },
  // generic
  not_ready: { status: 503, message: 'The service is not ready.' },
  shutting_down: { status: 503, message: 'The service is shutting down.' },
  internal: { status: 500, message: 'Internal error.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_TABLE;

export interface AppErrorOptions {
  /** Replaces the table's public message; must be safe to show to the caller. */
  message?: string;
  /** Seconds the caller should wait before retrying (becomes Retry-After). */
  retryAfterSeconds?: number;
  /** Extra public, non-secret fields merged into the error body (e.g. the gate that refused). */
  details?: Record<string, string | number | boolean>;
  /** Internal cause for logs only; must not contain secrets either. */
  cause?: unknown;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryAfterSeconds: number | undefined;
  readonly details: Record<string, string | number | boolean> | undefined;

  constructor(code: ErrorCode, options: AppErrorOptions = {}) {
    super(options.message ?? ERROR_TABLE[code].message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = ERROR_TABLE[code].status;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.details = options.details;
  }
}

export function statusOf(code: ErrorCode): number {
  return ERROR_TABLE[code].status;
}

export function publicMessageOf(code: ErrorCode): string {
  return ERROR_TABLE[code].message;
}

export function isErrorCode(value: string): value is ErrorCode {
  return Object.prototype.hasOwnProperty.call(ERROR_TABLE, value);
}

/** The JSON error body every non-provider route returns. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string } & Record<string, string | number | boolean>;
}

export function errorBody(err: AppError): ErrorBody {
  return { error: { ...(err.details ?? {}), code: err.code, message: err.message } };
}
