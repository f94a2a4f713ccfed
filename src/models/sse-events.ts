/**
 * Server-sent events from a provider, split into complete events as bytes arrive. Events end at a
 * blank line; CRLF line ends (also split across chunks) become LF. Bytes after the last complete
 * event are kept in pieces until an event ends, so a long event costs linear time, and an event
 * that grows past the bound is refused rather than held forever.
 *
 * The work stays on bytes: an event boundary is ASCII, so a cut there never splits a UTF-8
 * character, and only events the observer says may carry what it reads are decoded for it. Every
 * other byte goes out exactly as it came in — on a stream that is nearly all of them.
 */
import type { StreamObserver } from './providers/index.js';

/** Longest server-sent event (bytes) held while waiting for its end. */
export const MAX_EVENT_LENGTH = 8 * 1024 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const EVENT_END = Buffer.from('\n\n');
const NOTHING = Buffer.alloc(0);

/** `chunk` without the CR of each CRLF; a CR ending the chunk is left for the next one to decide. */
function withoutCrBeforeLf(chunk: Buffer, carriage: boolean): { bytes: Buffer; carriage: boolean } {
  const pieces: Buffer[] = [];
  if (carriage && chunk[0] !== LF) pieces.push(Buffer.from([CR]));
  let from = 0;
  let cr = chunk.indexOf(CR);
  while (cr !== -1) {
    if (cr === chunk.length - 1) {
      pieces.push(chunk.subarray(from, cr));
      return { bytes: Buffer.concat(pieces), carriage: true };
    }
    if (chunk[cr + 1] === LF) {
      pieces.push(chunk.subarray(from, cr));
      from = cr + 1;
    }
    cr = chunk.indexOf(CR, cr + 1);
  }
  pieces.push(chunk.subarray(from));
  return { bytes: Buffer.concat(pieces), carriage: false };
}

/**
 * Splits the provider's bytes into complete events (blank-line separated) and lets the observer see
 * (and drop) the ones it says it reads. `feed` answers the bytes to pass on, or null when one
 * event grows past the bound (a provider that never ends an event would otherwise grow it forever).
 */
export class EventSplitter {
  /** Bytes after the last complete event, kept in pieces: joining on every chunk would be quadratic. */
  #parts: Buffer[] = [];
  #partsLength = 0;
  /** A CR that ended the last chunk: it may be half of a CRLF split across chunks. */
  #carriage = false;

  constructor(private readonly observer: StreamObserver) {}

  feed(chunk: Buffer): Buffer | null {
    if (chunk.length === 0) return NOTHING;
    let bytes = chunk;
    if (this.#carriage || chunk.includes(CR)) ({ bytes, carriage: this.#carriage } = withoutCrBeforeLf(chunk, this.#carriage));
    if (bytes.length === 0) return NOTHING;
    const last = this.#parts.at(-1);
    const endsAcross = last !== undefined && last[last.length - 1] === LF && bytes[0] === LF;
    const lastEnd = bytes.lastIndexOf(EVENT_END);
    if (!endsAcross && lastEnd === -1) {
      // No event ends in this chunk: keep it and look again when one does.
      this.#parts.push(bytes);
      this.#partsLength += bytes.length;
      return this.#partsLength > MAX_EVENT_LENGTH ? null : NOTHING;
    }
    const pending = this.#parts.length === 0 ? bytes : Buffer.concat([...this.#parts, bytes]);
    const complete = (lastEnd === -1 ? pending.lastIndexOf(EVENT_END) : pending.length - bytes.length + lastEnd) + EVENT_END.length;
    const rest = pending.subarray(complete);
    this.#parts = rest.length === 0 ? [] : [rest];
    this.#partsLength = rest.length;
    if (rest.length > MAX_EVENT_LENGTH) return null;
    return this.#observe(pending.subarray(0, complete));
  }

  /** What is left when the stream ends: an event without its blank line, if the observer keeps it. */
  rest(): Buffer {
    const parts = this.#carriage ? [...this.#parts, Buffer.from([CR])] : this.#parts;
    const rest = Buffer.concat(parts);
    this.#parts = [];
    this.#partsLength = 0;
    this.#carriage = false;
    if (rest.length === 0) return NOTHING;
    return this.observer.find(rest, 0) === -1 || this.observer.onEvent(rest.toString('utf8')) ? rest : NOTHING;
  }

  /**
   * Complete events: each event around a place the observer points at goes to it (found from that
   * place, so the events between are never looked at one by one); the kept bytes are answered.
   */
  #observe(events: Buffer): Buffer {
    let at = this.observer.find(events, 0);
    if (at === -1) return events;
    const kept: Buffer[] = [];
    let droppedAny = false;
    let start = 0;
    while (at !== -1) {
      // The event begins after the last blank line that ends before `at` (never before `start`).
      const before = at >= EVENT_END.length ? events.lastIndexOf(EVENT_END, at - EVENT_END.length) : -1;
      const eventStart = Math.max(start, before === -1 ? 0 : before + EVENT_END.length);
      const end = events.indexOf(EVENT_END, eventStart) + EVENT_END.length;
      if (eventStart > start) kept.push(events.subarray(start, eventStart));
      const event = events.subarray(eventStart, end);
      if (this.observer.onEvent(event.toString('utf8'))) kept.push(event);
      else droppedAny = true;
      start = end;
      at = start < events.length ? this.observer.find(events, start) : -1;
    }
    if (!droppedAny) return events;
    kept.push(events.subarray(start));
    return Buffer.concat(kept);
  }
}
