/**
 * V8 settings for the long-running gateway process, applied by `portcullis start` before the
 * record store or anything else heavy loads. Both trade a little speed off the request path for a
 * resident size an operator can plan around (figures: bench/README.md).
 *
 * - `--liftoff-only`: the embedded record store is PostgreSQL compiled to WebAssembly. V8's
 *   optimising tier recompiles its hot functions in the background and keeps about 90 MB of
 *   machine code and compiler memory for a store that is off the request path (usage flushes,
 *   admin calls), where the baseline compiler's code is fast enough. The HTTP client's response
 *   parser (undici's llhttp) is WebAssembly too and so also runs baseline code; measured side by
 *   side on the distributed deployment, which has no PGlite, the optimising tier made no difference
 *   beyond noise and cost about 20 MB (bench/README.md).
 * - `--heap-growing-percent`: after a full collection V8 lets the heap grow to about twice what
 *   survived before collecting again; the gateway's survivors are small (caches, open calls), so a
 *   tighter bound keeps peak memory down at the cost of a few more, short, collections.
 *
 * Both flags are read when they apply (a module compiled, a collection finished), so setting them
 * at run time works; they are set before PGlite compiles its module.
 */
import { setFlagsFromString } from 'node:v8';

export const SERVING_V8_FLAGS = ['--liftoff-only', '--heap-growing-percent=25'] as const;

export function tuneRuntimeForServing(): void {
  for (const flag of SERVING_V8_FLAGS) setFlagsFromString(flag);
}
