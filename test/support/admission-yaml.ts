/** Config for multi-process admission tests: one burst limit for every user type, `/api/me` fully guarded. */
export function guardedMeYaml(burst: number): string {
  const limit = `{ burst: ${burst}, burstWindowSeconds: 60, hourly: null }`;
  return `
admission:
  rateLimits:
    anonymous: ${limit}
    registered: ${limit}
    paid: ${limit}
    privileged: ${limit}
  routes:
    guard: ['^/api/me$']
`;
}
