/**
 * Steps of one scope issued in the same turn of the event loop leave together, as one call of their
 * script: every request's admit step, every call's settlement. As separate calls each paid the
 * client's per-command work (a command object, a promise, a reply callback) and the server's
 * per-script work, which on a busy gateway cost more CPU than the steps themselves.
 *
 * A batched script runs its steps one after the other, so the outcome is exactly that of separate
 * calls in the order they were made. A batch closes at the end of the turn (setImmediate, as the
 * client's own pipelining does) or when it is full, so one script never holds the server for long.
 */
import { storeFailure } from '../errors.js';
import type { ScriptArg } from './lua-script.js';
import { asArray } from './replies.js';

/** Steps per script call: a full batch of the heaviest steps still runs in a few milliseconds. */
export const MAX_STEPS_PER_CALL = 32;
/** Keys per script call: an admit step may name up to 89 keys (8 windows, 8 reservations of 8 lines). */
export const MAX_KEYS_PER_CALL = 256;

/** How the steps of one script are laid out in a call; ARGV[1] is always the step count. */
export interface BatchedSteps<R, A> {
  /** The keys and arguments a batch of `scope` starts with, ARGV[1] included (filled in on sending). */
  head(scope: string): { keys: string[]; args: ScriptArg[] };
  append(scope: string, request: R, keys: string[], args: ScriptArg[]): void;
  /** One step's answer from its reply; throws (an internal store error) on a reply of the wrong shape. */
  decode(request: R, reply: unknown): A;
}

/** Runs the script with these keys and arguments; rejects with the store's own errors. */
export type ScriptRunner = (keys: string[], args: ScriptArg[]) => Promise<unknown>;

interface PendingStep<R, A> {
  request: R;
  resolve(result: A): void;
  reject(error: unknown): void;
}

class Batch<R, A> {
  readonly keys: string[];
  readonly args: ScriptArg[];
  readonly steps: PendingStep<R, A>[] = [];
  sent = false;

  constructor(head: { keys: string[]; args: ScriptArg[] }) {
    this.keys = head.keys;
    this.args = head.args;
  }

  get full(): boolean {
    return this.steps.length >= MAX_STEPS_PER_CALL || this.keys.length >= MAX_KEYS_PER_CALL;
  }
}

export class StepBatcher<R, A> {
  /** The open batch of each scope (keys of one scope share a hash tag; scopes may not). */
  readonly #open = new Map<string, Batch<R, A>>();

  constructor(
    private readonly layout: BatchedSteps<R, A>,
    private readonly run: ScriptRunner,
  ) {}

  submit(scope: string, request: R): Promise<A> {
    let batch = this.#open.get(scope);
    if (batch === undefined) {
      batch = new Batch<R, A>(this.layout.head(scope));
      this.#open.set(scope, batch);
      setImmediate(closeAtTurnEnd, this, scope, batch);
    }
    this.layout.append(scope, request, batch.keys, batch.args);
    const open = batch;
    const result = new Promise<A>((resolve, reject) => open.steps.push({ request, resolve, reject }));
    if (batch.full) this.send(scope, batch);
    return result;
  }

  /** Sends `batch` unless it already left; called when it fills up and at the end of its turn. */
  send(scope: string, batch: Batch<R, A>): void {
    if (batch.sent) return;
    batch.sent = true;
    if (this.#open.get(scope) === batch) this.#open.delete(scope);
    batch.args[0] = batch.steps.length;
    this.run(batch.keys, batch.args).then(
      (raw) => this.#answer(batch.steps, raw),
      (error: unknown) => {
        for (const step of batch.steps) step.reject(error);
      },
    );
  }

  /** Hands every step its own reply; a reply of the wrong shape fails only the steps it concerns. */
  #answer(steps: readonly PendingStep<R, A>[], raw: unknown): void {
    let replies: unknown[];
    try {
      replies = asArray(raw);
      if (replies.length !== steps.length) throw storeFailure(new Error('batched script answered a batch of the wrong length'));
    } catch (error) {
      for (const step of steps) step.reject(error);
      return;
    }
    steps.forEach((step, i) => {
      try {
        step.resolve(this.layout.decode(step.request, replies[i]));
      } catch (error) {
        step.reject(error);
      }
    });
  }
}

function closeAtTurnEnd<R, A>(batcher: StepBatcher<R, A>, scope: string, batch: Batch<R, A>): void {
  batcher.send(scope, batch);
}
