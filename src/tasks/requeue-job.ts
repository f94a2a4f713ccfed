/**
 * The background job that returns lapsed work to the queue: every interval it calls
 * `requeueExpired` (safe on every replica at once: each lapsed item moves back exactly once,
 * atomically in the store), and now and then forgets workers whose records expired.
 */
import type { Logger } from '../core/logger.js';
import type { TaskService } from './task-service.js';
import type { WorkerRegistry } from './workers.js';

const PRUNE_EVERY_RUNS = 60;

export interface RequeueJobOptions {
  service: TaskService;
  workers: WorkerRegistry;
  intervalMs: number;
  logger?: Logger;
}

/** Starts the job; the returned function stops it and waits for a run in progress. */
export function startRequeueJob(options: RequeueJobOptions): () => Promise<void> {
  let stopped = false;
  let runs = 0;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();

  const runOnce = async (): Promise<void> => {
    const moved = await options.service.requeueExpired();
    if (moved > 0) options.logger?.info({ moved }, 'requeued tasks whose worker stopped heart-beating');
    runs += 1;
    if (runs % PRUNE_EVERY_RUNS === 0) await options.workers.prune();
  };

  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = runOnce()
        .catch((err: unknown) => options.logger?.warn({ err }, 'task requeue run failed; will retry'))
        .finally(schedule);
    }, options.intervalMs);
    timer.unref();
  };
  schedule();

  return async () => {
    stopped = true;
    if (timer !== undefined) clearTimeout(timer);
    await running;
  };
}
