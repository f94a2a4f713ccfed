import { describe, expect, it } from 'vitest';
import { isStorableText } from './text.js';

describe('isStorableText', () => {
  it('accepts ordinary text, surrogate pairs included', () => {
    for (const text of ['', 'plain', 'é ü 中文', 'emoji \u{1F600} pair']) expect(isStorableText(text)).toBe(true);
  });

  it('refuses a NUL and lone surrogates of either half, wherever they sit', () => {
    for (const text of ['a\u0000b', '\u0000', 'x\ud800', '\ud800y', 'x\udc00', '\udc00\ud800', 'ok\u{1F600}\ud83d']) expect(isStorableText(text)).toBe(false);
  });

  it('gives the same answer however often it is asked (no regex state carried between calls)', () => {
    const answers = Array.from({ length: 6 }, (_, i) => isStorableText(i % 2 === 0 ? 'x\ud800' : 'fine'));
    expect(answers).toEqual([false, true, false, true, false, true]);
  });
});
