/** The expiring counter: one script so the ttl is set exactly once, by the first increment. */
import { LuaScript } from './lua-script.js';

/** KEYS: counter. ARGV: by, ttlMs. The ttl is set by the first increment only. */
export const incrementScript = new LuaScript(
  'increment',
  `
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v
`,
);
