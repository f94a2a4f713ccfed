/**
 * `portcullis start` with `server.workers` > 1: this process becomes a supervisor that forks that
 * many gateway processes (node:cluster, one shared listening socket; connections are spread across
 * them by the primary). Each worker is a full replica of the distributed deployment — the same as
 * separate machines sharing PostgreSQL and Redis — so nothing here knows about requests.
 *
 * The supervisor restarts a worker that dies unexpectedly (after a short, growing pause, so a
 * worker that cannot start does not spin), and on SIGTERM/SIGINT asks every worker to drain and
 * waits for all of them, killing those still there after the grace period.
 */
import cluster, { type Worker } from 'node:cluster';

export interface WorkerMessage {
  type: 'listening';
  url: string;
}

export interface SupervisorOptions {
  workers: number;
  /** How long a draining worker may take before it is killed. */
  graceMs: number;
  write(line: string): void;
}

const RESTART_PAUSE_MS = [250, 1000, 5000] as const;

function isListening(message: unknown): message is WorkerMessage {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'listening' && typeof (message as { url?: unknown }).url === 'string';
}

/** Runs in the primary; resolves once every worker listens, with the shared URL. */
export function superviseWorkers(options: SupervisorOptions): Promise<string> {
  let stopping = false;
  let failures = 0;
  const listening = new Set<number>();
  let announce: ((url: string) => void) | undefined;
  const ready = new Promise<string>((resolve) => (announce = resolve));

  const fork = (): Worker => {
    const worker = cluster.fork();
    worker.on('message', (message: unknown) => {
      if (!isListening(message)) return;
      listening.add(worker.id);
      failures = 0;
      if (listening.size === options.workers) announce?.(message.url);
    });
    return worker;
  };

  cluster.on('exit', (worker, code, signal) => {
    listening.delete(worker.id);
    if (stopping) return;
    failures += 1;
    const pause = RESTART_PAUSE_MS[Math.min(failures, RESTART_PAUSE_MS.length) - 1] ?? 5000;
    options.write(`worker ${String(worker.process.pid)} exited (${signal ?? String(code)}); starting another in ${pause} ms\n`);
    setTimeout(() => {
      if (!stopping) fork();
    }, pause).unref();
  });

  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    options.write(`${signal}: draining ${workers.length} workers and shutting down\n`);
    const kill = setTimeout(() => {
      for (const worker of workers) if (!worker.isDead()) worker.process.kill('SIGKILL');
    }, options.graceMs + 5000);
    kill.unref();
    let left = workers.length;
    if (left === 0) process.exit(0);
    for (const worker of workers) {
      worker.once('exit', () => {
        left -= 1;
        if (left === 0) process.exit(0);
      });
      worker.process.kill('SIGTERM');
    }
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));

  for (let i = 0; i < options.workers; i += 1) fork();
  return ready;
}

/** Runs in a worker once its gateway listens: tells the supervisor. */
export function reportListening(url: string): void {
  process.send?.({ type: 'listening', url } satisfies WorkerMessage);
}
