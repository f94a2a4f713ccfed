/**
 * The one hot-state scope of a caller's counter gates: its org's (the same scope the org's budget
 * lines and reservations live in, so the rate-limit windows and the reservations of a request are
 * in one Redis Cluster slot and one atomic step). Callers without an org (anonymous) have no budget
 * lines; their windows share one scope. The scope keeps its historical `budget:` name so budget
 * counters already in the store carry on across an upgrade.
 */
import type { Principal } from '../identity/principal.js';

const NO_ORG_SCOPE = 'rl:-';

export function orgScope(orgId: string): string {
  return `budget:${orgId}`;
}

export function admissionScope(principal: Principal): string {
  return principal.orgId === null ? NO_ORG_SCOPE : orgScope(principal.orgId);
}
