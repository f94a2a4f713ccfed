/**
 * Which routes run the full admission pipeline. Model (`/v1/...`) and task ingress (`/api/tasks`,
 * `/api/orgs/:orgId/tasks`) are always guarded fully, whatever the config says, so a bypass pattern
 * can never open them. Other routes are authenticate-only unless listed under
 * `admission.routes.guard`; routes listed under `admission.routes.bypass` (e.g. webhooks) skip
 * throttling. Patterns were validated at load or at the admin API (config.ts) and are matched
 * against the route pattern (e.g. `/api/orgs/:orgId/...`), which the server defines, not against
 * raw user input.
 *
 * The live policy is consulted per request: when the patterns change (a new config object), they
 * are compiled once and the per-route answers start afresh, so a change applies to routes already
 * registered. Route patterns are a fixed set, so the answers are memoised per pattern.
 */
import type { AdmissionConfig } from './config.js';
import type { RouteGuard } from './types.js';

// Model routes, and task ingress in both its forms (the org-scoped route the tasks module serves).
const ALWAYS_GUARDED = [/^\/v1(\/|$)/, /^\/api\/tasks(\/|$)/, /^\/api\/orgs\/[^/]+\/tasks\/?$/];
/** Routes are server-defined; the bound only guards against a caller passing raw paths. */
const MEMO_LIMIT = 4096;

export interface RoutePolicy {
  classify(route: string): RouteGuard;
}

type RouteSettings = AdmissionConfig['routes'];

export function createRoutePolicy(routes: RouteSettings): RoutePolicy {
  const guard = routes.guard.map((source) => new RegExp(source));
  const bypass = routes.bypass.map((source) => new RegExp(source));
  return {
    classify(route) {
      const path = route.split('?')[0] ?? route;
      if (ALWAYS_GUARDED.some((re) => re.test(path))) return 'full';
      if (guard.some((re) => re.test(path))) return 'full';
      if (bypass.some((re) => re.test(path))) return 'bypass';
      return 'authenticate_only';
    },
  };
}

/** A policy that follows the live route settings. */
export function createLiveRoutePolicy(current: () => RouteSettings): RoutePolicy {
  let source: RouteSettings | undefined;
  let policy: RoutePolicy | undefined;
  const answers = new Map<string, RouteGuard>();
  return {
    classify(route) {
      const settings = current();
      if (settings !== source || policy === undefined) {
        source = settings;
        policy = createRoutePolicy(settings);
        answers.clear();
      }
      let answer = answers.get(route);
      if (answer === undefined) {
        answer = policy.classify(route);
        if (answers.size >= MEMO_LIMIT) answers.clear();
        answers.set(route, answer);
      }
      return answer;
    },
  };
}
