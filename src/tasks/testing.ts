/** Test helpers for tasks: a fault-injecting hot state, a memory relay sink, a ready-made setup. */
import type { AuditEventInput } from '../audit/index.js';
import { ManualClock } from '../core/clock.js';
import type { HotState } from '../store/state/index.js';
import { MemoryHotState } from '../store/state/index.js';
import type { TaskEvent } from './events.js';
import { createTasks, type Tasks, type TaskSettings } from './index.js';
import type { RelaySink } from './relay.js';

export type EnqueueFault = 'none' | 'before_write' | 'after_write';

/**
 * Wraps a hot state so `enqueue` fails on demand: `before_write` throws before the store is
 * touched (the atomic step never happened), `after_write` throws after the store committed (the
 * answer was lost on the way back). Everything else passes through.
 */
export function faultyHotState(inner: HotState): { state: HotState; setFault: (fault: EnqueueFault) => void } {
  let fault: EnqueueFault = 'none';
  const state = new Proxy(inner, {
    get(target, property, receiver) {
      if (property === 'enqueue') {
        return async (...args: Parameters<HotState['enqueue']>) => {
          if (fault === 'before_write') throw new Error('injected fault before the enqueue');
          const result = await target.enqueue(...args);
          if (fault === 'after_write') throw new Error('injected fault after the enqueue');
          return result;
        };
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { state, setFault: (next) => (fault = next) };
}

/** Keeps relayed events in memory, deduplicating by eventId like the audit-backed sink. */
export class MemoryRelaySink implements RelaySink {
  readonly written: AuditEventInput[] = [];
  failAppend = false;

  async recorded(events: TaskEvent[]): Promise<Set<string>> {
    const ids = new Set(this.written.map((event) => String(event.details?.eventId)));
    return new Set(events.map((event) => event.eventId).filter((id) => ids.has(id)));
  }

  async append(event: AuditEventInput): Promise<void> {
    if (this.failAppend) throw new Error('injected audit failure');
    this.written.push(event);
  }
}

export const TEST_TASK_SETTINGS: Partial<TaskSettings> = { healthyMs: 10_000, leaseMs: 20_000, hardLimitPercent: 100 };

export interface TaskTestSetup {
  clock: ManualClock;
  memory: MemoryHotState;
  state: HotState;
  setFault: (fault: EnqueueFault) => void;
  sink: MemoryRelaySink;
  tasks: Tasks;
}

export function createTaskTestSetup(settings: Partial<TaskSettings> = {}): TaskTestSetup {
  const clock = new ManualClock();
  const memory = new MemoryHotState({ clock });
  const { state, setFault } = faultyHotState(memory);
  const sink = new MemoryRelaySink();
  const tasks = createTasks({ state, relaySink: sink, settings: { ...TEST_TASK_SETTINGS, ...settings }, capacityCacheMs: 0 });
  return { clock, memory, state, setFault, sink, tasks };
}
