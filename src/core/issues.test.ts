import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { issueMessage, issuePath } from './issues.js';

function firstIssue(schema: z.ZodType, input: unknown): z.core.$ZodIssue {
  const result = schema.safeParse(input);
  if (result.success) throw new Error('expected a failed parse');
  const issue = result.error.issues[0];
  if (issue === undefined) throw new Error('no issue');
  return issue;
}

describe('issuePath', () => {
  it('writes plain keys after dots and indexes in brackets', () => {
    expect(issuePath('oidc', ['issuers', 0, 'jwksUrl'])).toBe('oidc.issuers[0].jwksUrl');
    expect(issuePath('', ['server', 'port'])).toBe('server.port');
    expect(issuePath('body', [])).toBe('body');
    expect(issuePath('', [])).toBe('(top level)');
    expect(issuePath('', [], 'value')).toBe('value');
    expect(issuePath('', [2, 'model'])).toBe('[2].model');
  });

  it('quotes keys that are not plain names, with control characters and lone surrogates escaped', () => {
    expect(issuePath('admission', ['keyOverrides', 'a\u0000b'])).toBe('admission.keyOverrides["a\\u0000b"]');
    expect(issuePath('x', ['k\udc00'])).toBe('x["k\\udc00"]');
    expect(issuePath('capabilities', ['credentials', 'github.token'])).toBe('capabilities.credentials["github.token"]');
    expect(issuePath('x', ['a"b\nc'])).toBe('x["a\\"b\\nc"]');
  });

  it('cuts a long key short, so an error never carries the whole of it', () => {
    const path = issuePath('body', ['-'.repeat(10_000)]);
    expect(path.length).toBeLessThan(80);
    expect(path).toBe(`body["${'-'.repeat(64)}…"]`);
  });
});

describe('issueMessage', () => {
  const keyed = z.record(z.string().max(5).refine((key) => !key.includes('\u0000'), 'must not contain a NUL character'), z.number());

  it("names the record key's own rule instead of the generic record message", () => {
    expect(issueMessage(firstIssue(keyed, { 'a\u0000': 1 }))).toBe('the key is not allowed: must not contain a NUL character');
    expect(issueMessage(firstIssue(keyed, { abcdefgh: 1 }))).toMatch(/^the key is not allowed: .*5/);
  });

  it('names unknown keys quoted and cut short, and only the first few of many', () => {
    const strict = z.object({ n: z.number() }).strict();
    expect(issueMessage(firstIssue(strict, { n: 1, pad: 1 }))).toBe('Unrecognized key: "pad"');
    expect(issueMessage(firstIssue(strict, { n: 1, 'a\u0000': 1, b: 2 }))).toBe('Unrecognized keys: "a\\u0000", "b"');
    const many = Object.fromEntries([['n', 1], ...Array.from({ length: 8 }, (_, i) => [`${'k'.repeat(1000)}${i}`, i])]);
    const message = issueMessage(firstIssue(strict, many));
    expect(message).toMatch(/^Unrecognized keys: .* and 3 more$/);
    expect(message.length).toBeLessThan(400);
  });

  it('keeps every other message as the schema wrote it', () => {
    expect(issueMessage(firstIssue(z.object({ port: z.number().max(10) }), { port: 11 }))).toBe(firstIssue(z.number().max(10), 11).message);
    expect(issueMessage(firstIssue(keyed, { a: 'x' }))).toMatch(/number/);
  });
});
