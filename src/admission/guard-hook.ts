/**
 * Applies the pipeline to routes an operator listed under `admission.routes.guard`. Model and task
 * ingress admit inside their handlers (they know cost and kind), so this hook skips them; every
 * other route classified `full` is admitted here as synchronous work with no cost, before its
 * handler runs, and settled exactly once when the response finishes or the client goes away.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { anonymousPrincipal } from '../identity/principal.js';
import type { Pipeline } from './pipeline.js';
import { applyAdmissionHeaders, sendRefusal } from './refusal-http.js';
import type { AdmissionTicket } from './types.js';

const SELF_ADMITTING = [/^\/v1(\/|$)/, /^\/api\/tasks(\/|$)/, /^\/api\/orgs\/:orgId\/tasks$/];

declare module 'fastify' {
  interface FastifyRequest {
    admissionTicket?: AdmissionTicket;
  }
}

export function registerAdmissionGuardHook(app: FastifyInstance, pipeline: Pipeline): void {
  app.addHook('preHandler', async (request: FastifyRequest, reply) => {
    const route = request.routeOptions.url;
    if (route === undefined || SELF_ADMITTING.some((re) => re.test(route))) return;
    if (pipeline.routes.classify(route) !== 'full') return;
    const principal = request.principal ?? anonymousPrincipal(request.ip);
    const result = await pipeline.admit({ principal, route, requestId: request.id, kind: 'sync' });
    if (!result.ok) {
      await sendRefusal(reply, result.refusal, result.headers);
      return reply;
    }
    applyAdmissionHeaders(reply, result.headers);
    request.admissionTicket = result.ticket;
    // A client that goes away first settles as an abort; the later onResponse settle is then a no-op.
    request.raw.once('close', () => {
      if (!reply.raw.writableFinished) void result.ticket.settle({ kind: 'unmetered', reason: 'client_abort' });
    });
    return undefined;
  });
  app.addHook('onResponse', async (request, reply) => {
    const ticket = request.admissionTicket;
    if (ticket === undefined) return;
    await ticket.settle(reply.statusCode >= 500 ? { kind: 'upstream_failure', reason: 'error' } : { kind: 'success', actualMicros: 0, actualTokens: 0 });
  });
}
