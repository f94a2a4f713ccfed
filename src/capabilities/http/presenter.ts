/**
 * Binding evidence a caller presents over HTTP: the container id from the trusted hop (believed
 * only when the socket peer itself is a configured hop, never from forwarded-for headers) and a
 * proof-of-possession JWS in the `DPoP` header.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyRequest } from 'fastify';
import type { TrustedHops } from './config.js';

export const CONTAINER_HEADER = 'x-portcullis-container';

export function containerIdFrom(headers: IncomingHttpHeaders, peerAddress: string | undefined, hops: TrustedHops): string | undefined {
  if (!hops.includes(peerAddress)) return undefined;
  const value = headers[CONTAINER_HEADER];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

export function trustedContainerId(request: FastifyRequest, hops: TrustedHops): string | undefined {
  return containerIdFrom(request.headers, request.socket.remoteAddress, hops);
}

export function presentedProof(headers: IncomingHttpHeaders): string | undefined {
  const value = headers.dpop;
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}
