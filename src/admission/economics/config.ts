/**
 * The `budgets` config section's default budgets, validated here (the config schema keeps them
 * opaque, as it does OIDC issuers) so errors name the exact key, e.g. `budgets.defaults.user[0].cap`.
 * Caps of money are integer micro-units: a float anywhere is a start-up error, never rounded.
 */
import { ConfigError } from '../../config/errors.js';
import { defaultBudgetsSchema, type DefaultBudgets } from './definitions.js';
import { issueMessage, issuePath } from '../../core/issues.js';

export function parseDefaultBudgets(input: unknown, configKey = 'budgets.defaults'): DefaultBudgets {
  const result = defaultBudgetsSchema.safeParse(input ?? {});
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => ({
        key: issuePath(configKey, issue.path),
        problem: issueMessage(issue),
        fix: 'each default is { metric: cost|tokens|requests, period: day|month|total, cap: integer (micro-units for cost), alertThresholds?: [percent, ...] }',
      })),
    );
  }
  return result.data;
}
