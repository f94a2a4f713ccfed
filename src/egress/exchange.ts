/**
 * One upstream call (a provider's, or the egress proxy's) as an undici dispatch handler. The answer's head resolves `response`; the body
 * stays paused until its consumer says how it wants it — `read(limit)` collects a bounded JSON
 * body, `pipe(sink)` hands chunks over with backpressure (a sink that answers false pauses the
 * socket until `resume()`), `discard()` drops it with the connection. Nothing is buffered without
 * a bound, and a call abandoned through `UpstreamAbort` stops reading from the provider at once.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import { UpstreamError, classifyUpstreamError } from './upstream-errors.js';

type Controller = Dispatcher.DispatchController;

export interface BodySink {
  /** One chunk; false pauses the provider's socket until `resume()`. */
  chunk(data: Buffer): boolean;
  end(): void;
  error(error: UpstreamError): void;
}

export interface UpstreamResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The whole body; more than `limit` bytes fails with `network` and drops the connection. */
  read(limit: number): Promise<Buffer>;
  pipe(sink: BodySink): void;
  resume(): void;
  discard(): void;
}

const ABANDONED = (): UpstreamError => new UpstreamError('network', 'the request was abandoned');
const DISCARDED = (): UpstreamError => new UpstreamError('network', 'the answer was not wanted');

/** Cancels one call from outside (the client went away); cheaper than an AbortSignal per call. */
export class UpstreamAbort {
  #aborted = false;
  #listener: ((error: UpstreamError) => void) | null = null;

  get aborted(): boolean {
    return this.#aborted;
  }

  abort(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#listener?.(ABANDONED());
  }

  /** For the exchange in flight; one at a time (fallback attempts run one after another). */
  listen(listener: ((error: UpstreamError) => void) | null): void {
    this.#listener = listener;
  }
}

export class UpstreamExchange implements Dispatcher.DispatchHandler {
  readonly response: Promise<UpstreamResponse>;
  #resolve!: (response: UpstreamResponse) => void;
  #reject!: (error: UpstreamError) => void;
  #controller: Controller | null = null;
  #started = false;
  #sink: BodySink | null = null;
  /** Chunks that arrived before a sink was attached or while it was paused. */
  #held: Buffer[] = [];
  #ended = false;
  #failure: UpstreamError | null = null;
  #finished = false;

  constructor(private readonly abort?: UpstreamAbort) {
    this.response = new Promise<UpstreamResponse>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    abort?.listen((error) => this.#cancel(error));
  }

  onRequestStart(controller: Controller): void {
    this.#controller = controller;
    if (this.abort?.aborted === true) controller.abort(ABANDONED());
  }

  onResponseStart(controller: Controller, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) return;
    this.#started = true;
    // Nothing reads the body until its consumer is attached.
    controller.pause();
    this.#resolve(this.#view(statusCode, headers));
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    const sink = this.#sink;
    if (sink === null || this.#held.length > 0) {
      this.#held.push(chunk);
      controller.pause();
      return;
    }
    if (!sink.chunk(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.#ended = true;
    if (this.#sink !== null && this.#held.length === 0) this.#finish(null);
  }

  onResponseError(_controller: Controller | undefined, error: Error): void {
    const failure = error instanceof UpstreamError ? error : classifyUpstreamError(error);
    if (!this.#started) {
      this.abort?.listen(null);
      this.#reject(failure);
      return;
    }
    this.#failure = failure;
    this.#held = [];
    if (this.#sink !== null) this.#finish(failure);
  }

  #cancel(error: UpstreamError): void {
    if (this.#controller !== null && !this.#controller.aborted) this.#controller.abort(error);
  }

  #finish(failure: UpstreamError | null): void {
    if (this.#finished) return;
    this.#finished = true;
    this.abort?.listen(null);
    const sink = this.#sink;
    if (sink === null) return;
    this.#release();
    if (failure === null) sink.end();
    else sink.error(failure);
  }

  /**
   * undici keeps up to 256 finished requests per connection (handler included) before trimming its
   * queue, so a finished exchange must not hold what the call's consumer reached: its sink leads to
   * the whole client request and reply, which would otherwise live on for seconds and be promoted.
   */
  #release(): void {
    this.#sink = null;
    this.#held = [];
    this.#controller = null;
  }

  /** Hands held chunks to the sink until it pauses; true when it can take more. */
  #deliverHeld(): boolean {
    const sink = this.#sink;
    if (sink === null) return false;
    while (this.#held.length > 0) {
      const chunk = this.#held.shift() as Buffer;
      if (!sink.chunk(chunk)) return false;
    }
    return true;
  }

  #view(status: number, headers: IncomingHttpHeaders): UpstreamResponse {
    const resume = (): void => {
      if (this.#finished || this.#failure !== null) return;
      if (!this.#deliverHeld()) return;
      if (this.#ended) this.#finish(null);
      else this.#controller?.resume();
    };
    const pipe = (sink: BodySink): void => {
      if (this.#sink !== null) throw new Error('an upstream body has one consumer');
      this.#sink = sink;
      if (this.#failure !== null) this.#finish(this.#failure);
      else resume();
    };
    return {
      status,
      headers,
      pipe,
      resume,
      read: (limit) =>
        new Promise<Buffer>((resolve, reject) => {
          const chunks: Buffer[] = [];
          let size = 0;
          pipe({
            chunk: (data) => {
              size += data.length;
              if (size > limit) {
                this.#cancel(DISCARDED());
                this.#finish(new UpstreamError('network', 'the provider answer is too large'));
                return false;
              }
              chunks.push(data);
              return true;
            },
            end: () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size)),
            error: reject,
          });
        }),
      discard: () => {
        this.#cancel(DISCARDED());
        this.#finished = true;
        this.abort?.listen(null);
        this.#release();
      },
    };
  }
}
