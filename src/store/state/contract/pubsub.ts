/** Contract: publish / subscribe between replicas. */
import { describe, expect, it } from 'vitest';
import { eventually, unique, type ContractContext } from './context.js';

export function pubSubContract(ctx: ContractContext): void {
  describe('pub/sub', () => {
    it('delivers a message published after subscribe to every subscriber on every replica', async () => {
      const peer = ctx.harness.peer === undefined ? ctx.state : await ctx.harness.peer();
      const channel = unique('chan');
      const here: string[] = [];
      const there: string[] = [];
      const also: string[] = [];
      const offHere = await ctx.state.subscribe(channel, (m) => here.push(m));
      const offThere = await peer.subscribe(channel, (m) => there.push(m));
      const offAlso = await peer.subscribe(channel, (m) => also.push(m));

      const publishing = ctx.state.publish(channel, 'revoke:key_1');
      // Delivery is asynchronous: nothing runs inside the publish call itself.
      expect(here).toEqual([]);
      await publishing;
      await eventually(() => here.length === 1 && there.length === 1 && also.length === 1);
      expect([here, there, also]).toEqual([['revoke:key_1'], ['revoke:key_1'], ['revoke:key_1']]);

      await offThere();
      await offThere();
      await peer.publish(channel, 'second');
      await eventually(() => here.length === 2 && also.length === 2);
      expect(there).toEqual(['revoke:key_1']);
      await offHere();
      await offAlso();
      await ctx.state.publish(channel, 'third');
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(here).toEqual(['revoke:key_1', 'second']);
      expect(also).toEqual(['revoke:key_1', 'second']);
    });

    it('keeps delivering to other handlers when one throws', async () => {
      const channel = unique('chan');
      const got: string[] = [];
      const offBad = await ctx.state.subscribe(channel, () => {
        throw new Error('handler bug');
      });
      const offGood = await ctx.state.subscribe(channel, (m) => got.push(m));
      await ctx.state.publish(channel, 'x');
      await eventually(() => got.length === 1);
      await offBad();
      await offGood();
    });

    it('does not deliver other channels', async () => {
      const channel = unique('chan');
      const got: string[] = [];
      const off = await ctx.state.subscribe(channel, (m) => got.push(m));
      await ctx.state.publish(`${channel}-other`, 'nope');
      await ctx.state.publish(channel, 'yes');
      await eventually(() => got.length === 1);
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(got).toEqual(['yes']);
      await off();
    });
  });
}
