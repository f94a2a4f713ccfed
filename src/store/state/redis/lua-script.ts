/**
 * One Lua script, run by hash (EVALSHA) and sent in full only when the server does not know it yet
 * (after a restart or SCRIPT FLUSH); EVAL also caches it for the next EVALSHA.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

export type ScriptArg = string | number;

export class LuaScript {
  /** SHA-1 here is Redis's script cache identifier, not a security primitive. */
  readonly sha: string;

  constructor(
    readonly name: string,
    readonly source: string,
  ) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: string[], args: ScriptArg[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('NOSCRIPT')) {
        return redis.eval(this.source, keys.length, ...keys, ...args);
      }
      throw err;
    }
  }
}

/**
 * Helpers every script starts with. Time always comes from the server so replicas with skewed
 * clocks agree; integers are formatted with %d because Lua's default number formatting switches to
 * exponent notation past 14 digits.
 */
export const LUA_PRELUDE = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function int(n)
  return string.format('%d', n)
end
`;
