/**
 * Applies the pipeline to routes an operator listed under `admission.routes.guard`. Model and task
 * ingress admit inside their handlers (they know cost and kind), so this hook skips them; every
 * other route classified `full` is admitted here as synchronous work with no cost, before its
 * handler runs, and settled exactly once when the response finishes or the client goes away.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
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

/** Whether a route pattern admits inside its handler; patterns are few, so the answer is kept. */
function selfAdmittingCheck(): (route: string) => boolean {
  const known = new Map<string, boolean>();
  return (route) => {
    let answer = known.get(route);
    if (answer === undefined) {
      answer = SELF_ADMITTING.some((re) => re.test(route));
      known.set(route, answer);
    }
    return answer;
  };
}

export function registerAdmissionGuardHook(app: FastifyInstance, pipeline: Pipeline): void {
  const selfAdmitting = selfAdmittingCheck();
  const admitHere = async (request: FastifyRequest, reply: FastifyReply, route: string): Promise<void> => {
    const principal = request.principal ?? anonymousPrincipal(request.ip);
    const result = await pipeline.admit({ principal, route, requestId: request.id, kind: 'sync' });
    if (!result.ok) {
      await sendRefusal(reply, result.refusal, result.headers);
      return;
    }
    applyAdmissionHeaders(reply, result.headers);
    request.admissionTicket = result.ticket;
    // A client that goes away first settles as an abort; the later onResponse settle is then a no-op.
    request.raw.once('close', () => {
      if (!reply.raw.writableFinished) void result.ticket.settle({ kind: 'unmetered', reason: 'client_abort' });
    });
  };
  // Callback-style hooks: they run on every request, and most have nothing to await here.
  app.addHook('preHandler', (request, reply, done) => {
    const route = request.routeOptions.url;
    if (route === undefined || selfAdmitting(route) || pipeline.routes.classify(route) !== 'full') {
      done();
      return;
    }
    // A refusal has been sent by then: Fastify does not run the handler of a reply already sent.
    admitHere(request, reply, route).then(() => done(), done);
  });
  app.addHook('onResponse', (request, reply, done) => {
    const ticket = request.admissionTicket;
    if (ticket === undefined) {
      done();
      return;
    }
    ticket.settle(reply.statusCode >= 500 ? { kind: 'upstream_failure', reason: 'error' } : { kind: 'success', actualMicros: 0, actualTokens: 0 }).then(() => done(), done);
  });
}
