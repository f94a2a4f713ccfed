/**
 * A background job on an interval: never overlaps itself, never keeps the process alive, logs
 * failures instead of crashing, and stops cleanly (waiting for a run in progress) at shutdown.
 */
import type { Logger } from './logger.js';

export interface IntervalJob {
  stop(): Promise<void>;
}

export function startIntervalJob(name: string, everyMs: number, run: () => Promise<unknown>, logger?: Logger): IntervalJob {
  let running: Promise<void> | undefined;
  let stopped = false;
  const timer = setInterval(() => {
    if (running !== undefined || stopped) return;
    running = run()
      .then(
        () => undefined,
        (error: unknown) => logger?.warn({ job: name, err: error instanceof Error ? error.message : 'unknown' }, 'background job failed'),
      )
      .finally(() => {
        running = undefined;
      });
  }, everyMs);
  timer.unref();
  return {
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
