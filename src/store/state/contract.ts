/**
 * The one behaviour contract every hot-state adapter must pass. Adapters register it from their own
 * test file with a factory; time-dependent cases move time with `advance` (a ManualClock for memory,
 * real short sleeps for Redis), so every case is written against store time reported by the store
 * itself rather than against the test's clock.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import { admitContract } from './contract/admit.js';
import { budgetContract } from './contract/budgets.js';
import type { ContractContext, HotStateHarness } from './contract/context.js';
import { pubSubContract } from './contract/pubsub.js';
import { outboxContract, queueContract } from './contract/queue.js';
import { valuesContract } from './contract/values.js';
import { windowsContract } from './contract/windows.js';

export type { HotStateHarness } from './contract/context.js';

export function describeHotStateContract(name: string, make: () => Promise<HotStateHarness>): void {
  describe(`hot-state contract: ${name}`, () => {
    let harness: HotStateHarness | undefined;
    beforeAll(async () => {
      harness = await make();
    });
    afterAll(async () => {
      await harness?.cleanup();
    });
    const ctx: ContractContext = {
      get harness(): HotStateHarness {
        if (harness === undefined) throw new Error('contract harness not ready');
        return harness;
      },
      get state() {
        return ctx.harness.state;
      },
      advance: async (ms: number) => {
        const h = ctx.harness;
        if (h.advance !== undefined) await h.advance(ms);
        else await new Promise((resolve) => setTimeout(resolve, ms));
      },
    };
    windowsContract(ctx);
    valuesContract(ctx);
    budgetContract(ctx);
    admitContract(ctx);
    pubSubContract(ctx);
    queueContract(ctx);
    outboxContract(ctx);
  });
}
