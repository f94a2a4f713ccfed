/**
 * Server-sent events from a provider, split into complete events as bytes arrive. Events end at a
 * blank line; CRLF line ends (also split across chunks) become LF. Text after the last complete
 * event is kept in pieces until an event ends, so a long event costs linear time, and an event that
 * grows past the bound is refused rather than held forever.
 */
import type { StreamObserver } from './providers/index.js';

/** Longest server-sent event (characters) held while waiting for its end. */
export const MAX_EVENT_LENGTH = 8 * 1024 * 1024;

/**
 * Splits the provider's bytes into complete events (blank-line separated) and lets the observer see
 * (and drop) each one. `feed` answers the text to pass on, or null when one event grows past the
 * bound (a provider that never ends an event would otherwise grow it forever).
 */
export class EventSplitter {
  /** Text after the last complete event, kept in pieces: joining on every chunk would be quadratic. */
  #parts: string[] = [];
  #partsLength = 0;
  /** A '\r' that ended the last chunk: it may be half of a CRLF split across chunks. */
  #carriage = false;
  readonly #decoder = new TextDecoder();

  constructor(private readonly observer: StreamObserver) {}

  feed(chunk: Buffer): string | null {
    let text = this.#decoder.decode(chunk, { stream: true });
    if (this.#carriage) text = `\r${text}`;
    this.#carriage = text.endsWith('\r');
    if (this.#carriage) text = text.slice(0, -1);
    if (text.includes('\r')) text = text.replace(/\r\n/g, '\n');
    if (text === '') return '';
    const endsAcross = this.#parts.length > 0 && (this.#parts.at(-1) ?? '').endsWith('\n') && text.startsWith('\n');
    if (!endsAcross && !text.includes('\n\n')) {
      // No event ends in this chunk: keep it and look again when one does. Parts are never empty,
      // so the last one's final character is the kept text's final character.
      this.#parts.push(text);
      this.#partsLength += text.length;
      return this.#partsLength > MAX_EVENT_LENGTH ? null : '';
    }
    const pending = this.#parts.join('') + text;
    let start = 0;
    let out = '';
    let end = pending.indexOf('\n\n', Math.max(0, this.#partsLength - 1));
    while (end !== -1) {
      const event = pending.slice(start, end + 2);
      start = end + 2;
      if (this.observer.onEvent(event)) out += event;
      end = pending.indexOf('\n\n', start);
    }
    const rest = pending.slice(start);
    this.#parts = rest === '' ? [] : [rest];
    this.#partsLength = rest.length;
    return rest.length > MAX_EVENT_LENGTH ? null : out;
  }

  rest(): string {
    const rest = `${this.#parts.join('')}${this.#carriage ? '\r' : ''}${this.#decoder.decode()}`;
    this.#parts = [];
    this.#partsLength = 0;
    this.#carriage = false;
    return rest !== '' && this.observer.onEvent(rest) ? rest : '';
  }
}

