import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StreamObserver } from './providers/index.js';
import { adapterFor } from './providers/index.js';
import { EventSplitter, MAX_EVENT_LENGTH } from './sse-events.js';

/** An observer that may read anything: every event goes to it. */
const everywhere = (bytes: Buffer, from: number): number => (from < bytes.length ? from : -1);

/** Keeps every event, records what it saw. */
function recorder(): StreamObserver & { seen: string[] } {
  const seen: string[] = [];
  return { seen, find: everywhere, onEvent: (event) => (seen.push(event), true), usage: () => null };
}

function splitAt(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let from = 0;
  for (const point of points) {
    pieces.push(bytes.subarray(from, point));
    from = point;
  }
  pieces.push(bytes.subarray(from));
  return pieces;
}

describe('server-sent event splitting', () => {
  it('finds the same events however the bytes are cut, with LF or CRLF line ends and multi-byte text (property)', () => {
    const eventText = fc.array(fc.string({ unit: fc.constantFrom('a', 'é', '€', '😀', ' ', ':', '\n') }), { minLength: 1, maxLength: 4 }).map((lines) => `data: ${lines.join('').replace(/\n+/g, '\n').replace(/\n$/, '')}`);
    fc.assert(
      fc.property(fc.array(eventText, { minLength: 1, maxLength: 6 }), fc.boolean(), fc.array(fc.nat(), { maxLength: 12 }), (events, crlf, cuts) => {
        const expected = events.map((e) => `${e}\n\n`);
        const wire = crlf ? expected.map((e) => e.replace(/\n/g, '\r\n')).join('') : expected.join('');
        const observer = recorder();
        const splitter = new EventSplitter(observer);
        const out: Buffer[] = [];
        for (const piece of splitAt(Buffer.from(wire), cuts)) out.push(splitter.feed(piece) ?? Buffer.from('REFUSED'));
        out.push(splitter.rest());
        expect(observer.seen).toEqual(expected);
        expect(Buffer.concat(out).toString()).toBe(expected.join(''));
      }),
      { numRuns: 1000 },
    );
  });

  it('hands the observer exactly the events around the places it points at, and drops only what it drops (property)', () => {
    const marker = Buffer.from('MARK{');
    const event = fc.record({ marked: fc.boolean(), drop: fc.boolean(), text: fc.string({ unit: fc.constantFrom('a', 'é', ' ', '\n', 'M', '{') }) }).map(({ marked, drop, text }) => ({
      marked,
      drop: marked && drop,
      wire: `data: ${text.replace(/\n+/g, '\n').replace(/\n$/, '').replaceAll('MARK{', '')}${marked ? ` MARK{${drop ? 'drop' : ''}` : ''}\n\n`,
    }));
    fc.assert(
      fc.property(fc.array(event, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 8 }), (events, cuts) => {
        const seen: string[] = [];
        const splitter = new EventSplitter({ find: (bytes, from) => bytes.indexOf(marker, from), onEvent: (text) => (seen.push(text), !text.includes('drop')), usage: () => null });
        const out: Buffer[] = [];
        for (const piece of splitAt(Buffer.from(events.map((e) => e.wire).join('')), cuts)) out.push(splitter.feed(piece) ?? Buffer.from('REFUSED'));
        out.push(splitter.rest());
        expect(seen).toEqual(events.filter((e) => e.marked).map((e) => e.wire));
        expect(Buffer.concat(out).toString()).toBe(events.filter((e) => !e.drop).map((e) => e.wire).join(''));
      }),
      { numRuns: 1000 },
    );
  });

  it('passes on a trailing event without its blank line at the end, and drops what the observer drops', () => {
    const splitter = new EventSplitter({ find: everywhere, onEvent: (event) => !event.includes('drop'), usage: () => null });
    expect(splitter.feed(Buffer.from('data: keep\n\ndata: drop\n\ndata: tail'))?.toString()).toBe('data: keep\n\n');
    expect(splitter.rest().toString()).toBe('data: tail');
  });

  it('refuses an event that grows past the bound, in linear time', () => {
    const splitter = new EventSplitter(recorder());
    const piece = Buffer.from('x'.repeat(64 * 1024));
    const started = performance.now();
    let verdict: Buffer | null = Buffer.alloc(0);
    let fed = 0;
    while (verdict !== null && fed <= MAX_EVENT_LENGTH * 2) {
      verdict = splitter.feed(piece);
      fed += piece.length;
    }
    expect(verdict).toBeNull();
    expect(fed).toBeGreaterThan(MAX_EVENT_LENGTH);
    expect(fed).toBeLessThanOrEqual(MAX_EVENT_LENGTH + piece.length);
    // Quadratic joining would take many seconds here; linear work is a few milliseconds.
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('passes the bytes of events the observer does not read through as they came, and reads only the usage event', () => {
    const observer = adapterFor('openai').streamUsage('chat', false);
    const read: string[] = [];
    const watching: StreamObserver = { find: (bytes, from) => observer.find(bytes, from), onEvent: (event) => (read.push(event), observer.onEvent(event)), usage: () => observer.usage() };
    const content = ['{"choices":[{"delta":{"content":"caf\u00e9 \u20ac"}}],"usage":null}', '{"choices":[{"delta":{"content":"\\"usage\\":{ in text"}}],"usage":null}'].map((data) => `data: ${data}\n\n`).join('');
    const usage = 'data: {"choices":[],"usage" : {"prompt_tokens":3,"completion_tokens":4}}\n\n';
    const splitter = new EventSplitter(watching);
    const wire = Buffer.from(`${content}${usage}data: [DONE]\n\n`);
    const first = splitter.feed(wire.subarray(0, Buffer.byteLength(content) + 5));
    const second = splitter.feed(wire.subarray(Buffer.byteLength(content) + 5));
    expect(first?.equals(Buffer.from(content))).toBe(true);
    // The usage-only chunk the client did not ask for is dropped; everything else is byte for byte.
    expect(second?.toString()).toBe('data: [DONE]\n\n');
    expect(read).toEqual([usage]);
    expect(observer.usage()).toEqual({ inputTokens: 3, outputTokens: 4, cachedInputTokens: 0, audioInputTokens: 0, audioOutputTokens: 0, audioSeconds: 0 });
  });
});
