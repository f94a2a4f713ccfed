/**
 * Which routes run the full admission pipeline. Model (`/v1/...`) and task ingress (`/api/tasks`,
 * `/api/orgs/:orgId/tasks`) are always guarded fully, whatever the config says, so a bypass pattern can never open them.
 * Other routes are authenticate-only unless listed under `admission.routes.guard`; routes listed
 * under `admission.routes.bypass` (e.g. webhooks) skip throttling. Patterns were validated at load
 * (config.ts) and are matched against the route pattern (e.g. `/api/orgs/:orgId/...`), which the
 * server defines, not against raw user input.
 */
import type { AdmissionConfig } from './config.js';
import type { RouteGuard } from './types.js';

// Model routes, and task ingress in both its forms (the org-scoped route the tasks module serves).
const ALWAYS_GUARDED = [/^\/v1(\/|$)/, /^\/api\/tasks(\/|$)/, /^\/api\/orgs\/[^/]+\/tasks\/?$/];

export interface RoutePolicy {
  classify(route: string): RouteGuard;
}

export function createRoutePolicy(routes: AdmissionConfig['routes']): RoutePolicy {
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
