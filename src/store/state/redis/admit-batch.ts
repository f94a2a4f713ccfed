/**
 * Admit steps of one scope issued in the same turn of the event loop leave together, as one call of
 * the admit script. Under load every request makes one such step; as separate calls each paid the
 * client's per-command work (a command object, a promise, a reply callback) and the server's
 * per-script work, which on a busy gateway cost more CPU than the steps themselves.
 *
 * The script runs the steps one after the other, so the outcome is exactly that of separate calls
 * in the order they were made. A batch closes at the end of the turn (setImmediate, as the client's
 * own pipelining does) or when it is full, so one script never holds the server for long.
 */
import type { AdmitRequest, AdmitResult } from '../port.js';
import { storeFailure } from '../errors.js';
import { admitBatchHead, appendAdmit, decodeAdmit } from './admit-codec.js';
import type { RedisKeys } from './keys.js';
import type { ScriptArg } from './lua-script.js';
import { asArray } from './replies.js';

/** Steps per script call: a full batch of the heaviest steps still runs in a few milliseconds. */
export const MAX_STEPS_PER_CALL = 32;
/** Keys per script call: a step may name up to 89 keys (8 windows, 8 reservations of 8 lines). */
export const MAX_KEYS_PER_CALL = 256;

/** Runs the admit script with these keys and arguments; rejects with the store's own errors. */
export type AdmitScriptRunner = (keys: string[], args: ScriptArg[]) => Promise<unknown>;

interface PendingStep {
  request: AdmitRequest;
  resolve(result: AdmitResult): void;
  reject(error: unknown): void;
}

class Batch {
  readonly keys: string[];
  /** ARGV[1] is the step count, filled in when the batch leaves. */
  readonly args: ScriptArg[];
  readonly steps: PendingStep[] = [];
  sent = false;

  constructor(head: { keys: string[]; args: ScriptArg[] }) {
    this.keys = head.keys;
    this.args = head.args;
  }

  get full(): boolean {
    return this.steps.length >= MAX_STEPS_PER_CALL || this.keys.length >= MAX_KEYS_PER_CALL;
  }
}

export class AdmitBatcher {
  /** The open batch of each scope (keys of one scope share a hash tag; scopes may not). */
  readonly #open = new Map<string, Batch>();

  constructor(
    private readonly keys: RedisKeys,
    private readonly run: AdmitScriptRunner,
  ) {}

  admit(scope: string, request: AdmitRequest): Promise<AdmitResult> {
    let batch = this.#open.get(scope);
    if (batch === undefined) {
      batch = new Batch(admitBatchHead(this.keys, scope));
      this.#open.set(scope, batch);
      setImmediate(closeAtTurnEnd, this, scope, batch);
    }
    appendAdmit(this.keys, scope, request, batch.keys, batch.args);
    const open = batch;
    const result = new Promise<AdmitResult>((resolve, reject) => open.steps.push({ request, resolve, reject }));
    if (batch.full) this.send(scope, batch);
    return result;
  }

  /** Sends `batch` unless it already left; called when it fills up and at the end of its turn. */
  send(scope: string, batch: Batch): void {
    if (batch.sent) return;
    batch.sent = true;
    if (this.#open.get(scope) === batch) this.#open.delete(scope);
    batch.args[0] = batch.steps.length;
    this.run(batch.keys, batch.args).then(
      (raw) => answer(batch.steps, raw),
      (error: unknown) => {
        for (const step of batch.steps) step.reject(error);
      },
    );
  }
}

function closeAtTurnEnd(batcher: AdmitBatcher, scope: string, batch: Batch): void {
  batcher.send(scope, batch);
}

/** Hands every step its own reply; a reply of the wrong shape fails only the steps it concerns. */
function answer(steps: readonly PendingStep[], raw: unknown): void {
  let replies: unknown[];
  try {
    replies = asArray(raw);
    if (replies.length !== steps.length) throw storeFailure(new Error('admit script answered a batch of the wrong length'));
  } catch (error) {
    for (const step of steps) step.reject(error);
    return;
  }
  steps.forEach((step, i) => {
    try {
      step.resolve(decodeAdmit(step.request, replies[i]));
    } catch (error) {
      step.reject(error);
    }
  });
}
