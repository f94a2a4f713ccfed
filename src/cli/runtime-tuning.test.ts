import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { SERVING_V8_FLAGS } from './runtime-tuning.js';

describe('runtime tuning of the gateway process', () => {
  // setFlagsFromString ignores a flag V8 no longer knows; the command line refuses it. A Node
  // release that dropped one would silently bring the memory it saves back, so check here.
  it('sets only flags this Node version knows', () => {
    const out = execFileSync(process.execPath, [...SERVING_V8_FLAGS, '-e', 'process.stdout.write("ok")'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out).toBe('ok');
  });

  it('refuses a flag V8 does not know on the command line (so the check above can fail)', () => {
    expect(() => execFileSync(process.execPath, ['--liftoff-only-not-a-flag', '-e', '1'], { stdio: ['ignore', 'pipe', 'pipe'] })).toThrow();
  });
});
