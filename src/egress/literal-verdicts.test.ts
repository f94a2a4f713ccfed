import { describe, expect, it } from 'vitest';
import { LiteralVerdicts } from './literal-verdicts.js';
import { EgressRefusedError, type Resolver } from './resolve.js';

const noNames: Resolver = async () => {
  throw new Error('an IP literal is never resolved');
};

describe('verdicts on IP-literal hosts', () => {
  it('refuse metadata and loopback, pass a public address, and answer synchronously once known', async () => {
    const verdicts = new LiteralVerdicts({ resolver: noNames, allow: {} });
    const metadata = await verdicts.verdict('169.254.169.254');
    expect(metadata).toBeInstanceOf(EgressRefusedError);
    expect(verdicts.verdict('169.254.169.254')).toBe(metadata);
    expect(await verdicts.verdict('[::1]')).toMatchObject({ reason: 'address_refused' });
    expect(await verdicts.verdict('93.184.216.34')).toBeNull();
    expect(verdicts.verdict('93.184.216.34')).toBeNull();
  });

  it('follow the policy they were made with', async () => {
    expect(await new LiteralVerdicts({ resolver: noNames, allow: { loopback: true } }).verdict('127.0.0.1')).toBeNull();
    expect(await new LiteralVerdicts({ resolver: noNames, allow: {} }).verdict('127.0.0.1')).toMatchObject({ reason: 'address_refused', addressClass: 'loopback' });
  });
});
