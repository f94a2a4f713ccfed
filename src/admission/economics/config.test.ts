import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../config/errors.js';
import { parseDefaultBudgets } from './config.js';

describe('budgets.defaults', () => {
  it('accepts rules per subject kind and fills in alert thresholds', () => {
    expect(parseDefaultBudgets({ user: [{ metric: 'cost', period: 'month', cap: 5_000_000 }] })).toEqual({
      org: [],
      user: [{ metric: 'cost', period: 'month', cap: 5_000_000, alertThresholds: [50, 80, 100] }],
      key: [],
    });
    expect(parseDefaultBudgets(undefined)).toEqual({ org: [], user: [], key: [] });
  });

  it('names the exact key of a float cap, an unknown metric or a duplicate line', () => {
    const problems = (input: unknown) => {
      try {
        parseDefaultBudgets(input);
      } catch (error) {
        if (error instanceof ConfigError) return error.problems.map((p) => p.key);
        throw error;
      }
      return [];
    };
    expect(problems({ user: [{ metric: 'cost', period: 'month', cap: 1.5 }] })).toEqual(['budgets.defaults.user[0].cap']);
    expect(problems({ org: [{ metric: 'dollars', period: 'month', cap: 1 }] })).toEqual(['budgets.defaults.org[0].metric']);
    expect(problems({ key: [{ metric: 'cost', period: 'day', cap: 1 }, { metric: 'cost', period: 'day', cap: 2 }] })).toEqual(['budgets.defaults.key']);
    expect(problems({ team: [] })).toEqual(['budgets.defaults']);
  });
});
