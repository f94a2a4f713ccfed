import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseBuildSpec, parseDeployment } from './compare-builds.js';

describe('compare-builds specs', () => {
  it('reads a build folder and its variant', () => {
    expect(parseBuildSpec('/tmp/a/dist')).toEqual({ dist: '/tmp/a/dist', budgets: true, throttleExempt: false, nodeArgs: [] });
    expect(parseBuildSpec('rel/dist#nobudget')).toMatchObject({ dist: resolve('rel/dist'), budgets: false });
    expect(parseBuildSpec('/d#throttle-exempt')).toMatchObject({ throttleExempt: true, budgets: true });
    expect(parseBuildSpec('/d#node-args=--max-semi-space-size=8,--trace-gc')).toMatchObject({ nodeArgs: ['--max-semi-space-size=8', '--trace-gc'] });
  });

  it('refuses what it would otherwise measure as something else', () => {
    expect(() => parseBuildSpec('/d#nobudgets')).toThrow(/unknown variant/);
    expect(() => parseBuildSpec('#nobudget')).toThrow(/no build folder/);
  });

  it('measures the embedded deployment unless told otherwise, and refuses an unknown one', () => {
    expect(parseDeployment(undefined)).toBe('embedded');
    expect(parseDeployment('distributed')).toBe('distributed');
    expect(() => parseDeployment('redis')).toThrow(/COMPARE_DEPLOYMENT/);
  });
});
