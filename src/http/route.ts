/**
 * One way to declare a route: method, path, auth mode, zod schemas for params/query/body, and a
 * handler that receives the already-parsed values. Declarations also feed /openapi.json, so the
 * document cannot drift from what the server enforces.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { AppError } from '../core/errors.js';
import type { Principal } from '../identity/principal.js';
import { issueMessage, issuePath } from '../core/issues.js';

export type AuthMode = 'required' | 'optional' | 'none';
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RouteContext<A extends AuthMode, P, Q, B> {
  principal: A extends 'required' ? Principal : Principal | null;
  params: P;
  query: Q;
  body: B;
  request: FastifyRequest;
  reply: FastifyReply;
}

export interface RouteSpec<A extends AuthMode, P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  method: HttpMethod;
  url: string;
  summary: string;
  tags?: string[];
  auth: A;
  /** Streaming routes (SSE/WebSocket) may take the credential from `?access_token=`. */
  streaming?: boolean;
  params?: P;
  query?: Q;
  body?: B;
  bodyLimit?: number;
  /** Status of a successful answer; 200 unless set. */
  successStatus?: number;
  handler: (ctx: RouteContext<A, z.infer<P>, z.infer<Q>, z.infer<B>>) => Promise<unknown>;
}

/** What the auth hook and OpenAPI need to know about a route, stored in Fastify's route config. */
export interface RouteMeta {
  auth: AuthMode;
  streaming: boolean;
  /**
   * The handler authenticates itself with `authenticateRequest` after reading the body (the model
   * routes apply per-address free-model limits before any credential is checked); the auth hook
   * then leaves the request alone.
   */
  authInHandler?: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    portcullis?: RouteMeta;
  }
}

export interface RegisteredRoute {
  method: HttpMethod;
  url: string;
  summary: string;
  tags: string[];
  auth: AuthMode;
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  successStatus: number;
}

/** Collected route declarations; the OpenAPI document is built from these. */
export class RouteRegistry {
  readonly routes: RegisteredRoute[] = [];
}

function parseOrThrow<T extends z.ZodType>(schema: T | undefined, value: unknown, where: string): z.infer<T> {
  if (schema === undefined) return undefined as z.infer<T>;
  const result = schema.safeParse(value ?? {});
  if (!result.success) {
    const issue = result.error.issues[0];
    const path = issuePath(where, issue?.path ?? []);
    throw new AppError('validation_failed', {
      message: `Invalid ${path}: ${issue === undefined ? 'invalid value' : issueMessage(issue)}`,
      details: { field: path },
    });
  }
  return result.data;
}

export function defineRoute<A extends AuthMode, P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType>(
  app: FastifyInstance,
  registry: RouteRegistry,
  spec: RouteSpec<A, P, Q, B>,
): void {
  const meta: RouteMeta = { auth: spec.auth, streaming: spec.streaming === true };
  registry.routes.push({
    method: spec.method,
    url: spec.url,
    summary: spec.summary,
    tags: spec.tags ?? [],
    auth: spec.auth,
    ...(spec.params ? { params: spec.params } : {}),
    ...(spec.query ? { query: spec.query } : {}),
    ...(spec.body ? { body: spec.body } : {}),
    successStatus: spec.successStatus ?? 200,
  });
  app.route({
    method: spec.method,
    url: spec.url,
    config: { portcullis: meta },
    ...(spec.bodyLimit === undefined ? {} : { bodyLimit: spec.bodyLimit }),
    handler: async (request, reply) => {
      const params = parseOrThrow(spec.params, request.params, 'params');
      const query = parseOrThrow(spec.query, request.query, 'query');
      const body = parseOrThrow(spec.body, request.body, 'body');
      if (spec.auth === 'required' && request.principal === null) throw new AppError('unauthenticated');
      const principal = request.principal as RouteContext<A, unknown, unknown, unknown>['principal'];
      const result = await spec.handler({ principal, params, query, body, request, reply });
      if (reply.sent) return reply;
      reply.code(spec.successStatus ?? 200);
      return result === undefined ? reply.send() : reply.send(result);
    },
  });
}
