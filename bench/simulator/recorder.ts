/**
 * What the simulator received and how each request ended, in a bounded ring. Tests read it to prove
 * what the gateway sent upstream (which Authorization arrived, which body) and how the exchange
 * finished (a stream the client abandoned shows up as `aborted`).
 */

/** `cut`: the simulator ended a stream early on purpose (abortAfterChunks). */
export type RequestOutcome = 'pending' | 'completed' | 'failed' | 'aborted' | 'hung' | 'cut';

export interface RecordedUsage {
  promptTokens: number;
  completionTokens: number;
  /** Whether the response actually carried the usage (a stream may omit it). */
  reported: boolean;
  /** Billed audio duration, for transcriptions. */
  audioSeconds?: number;
}

export interface RecordedRequest {
  seq: number;
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON body, or for multipart a summary of its fields; null when there was none. */
  body: unknown;
  bodyBytes: number;
  receivedAt: number;
  endedAt: number | null;
  status: number | null;
  stream: boolean;
  outcome: RequestOutcome;
  usage: RecordedUsage | null;
}

export class RequestRecorder {
  readonly #limit: number;
  #ring: RecordedRequest[] = [];
  #next = 0;
  #seq = 0;

  constructor(limit: number) {
    this.#limit = Math.max(0, limit);
  }

  /** Starts a record; with a limit of 0 nothing is kept, but the caller still gets a record to fill. */
  start(method: string, path: string, headers: RecordedRequest['headers']): RecordedRequest {
    this.#seq += 1;
    const record: RecordedRequest = {
      seq: this.#seq,
      method,
      path,
      headers,
      body: null,
      bodyBytes: 0,
      receivedAt: Date.now(),
      endedAt: null,
      status: null,
      stream: false,
      outcome: 'pending',
      usage: null,
    };
    if (this.#limit === 0) return record;
    if (this.#ring.length < this.#limit) this.#ring.push(record);
    else this.#ring[this.#next] = record;
    this.#next = (this.#next + 1) % this.#limit;
    return record;
  }

  /** Oldest first. */
  list(): RecordedRequest[] {
    if (this.#ring.length < this.#limit) return [...this.#ring];
    return [...this.#ring.slice(this.#next), ...this.#ring.slice(0, this.#next)];
  }

  get total(): number {
    return this.#seq;
  }

  clear(): void {
    this.#ring = [];
    this.#next = 0;
  }
}

export function finish(record: RecordedRequest, outcome: RequestOutcome, status: number | null): void {
  if (record.outcome !== 'pending' && record.outcome !== 'hung') return;
  record.outcome = outcome;
  if (status !== null) record.status = status;
  record.endedAt = Date.now();
}
