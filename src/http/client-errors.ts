/**
 * Requests Node's HTTP parser refuses before the framework sees them — a header holding a control
 * character, headers over the size limit, a request that took too long to arrive — are answered in
 * the one error shape rather than the framework's own, and the connection is then closed: after a
 * parse error nothing more read from it can be trusted to start a request.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { AppError, errorBody, type ErrorCode } from '../core/errors.js';

function codeOf(error: NodeJS.ErrnoException): ErrorCode {
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'request_timeout';
  if (error.code === 'HPE_HEADER_OVERFLOW') return 'headers_too_large';
  return 'bad_request';
}

export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  // A reset connection, or one already gone, has no one left to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const refusal = new AppError(codeOf(error));
  const body = JSON.stringify(errorBody(refusal));
  const head = [
    `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status] ?? 'Error'}`,
    'content-type: application/json; charset=utf-8',
    `content-length: ${Buffer.byteLength(body)}`,
    'x-content-type-options: nosniff',
    'connection: close',
  ].join('\r\n');
  socket.end(`${head}\r\n\r\n${body}`, () => socket.destroy());
}
