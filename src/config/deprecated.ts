/**
 * Keys that moved: each is accepted under its old name for one release, read as its new one, and
 * reported as a warning the gateway logs at start. Setting both names to different values is a
 * config error, never a silent choice between them.
 */
import { ConfigError } from './errors.js';

interface MovedKey {
  from: readonly [section: string, key: string];
  to: readonly [section: string, key: string];
  /** The kind of value both names take, checked here so the error names the key the operator wrote. */
  type: 'boolean';
}

const MOVED: readonly MovedKey[] = [
  // One switch for models without a price, next to the price table (0.1 had one per section).
  { from: ['budgets', 'allowUnpricedModels'], to: ['models', 'allowUnpricedModels'], type: 'boolean' },
];

function mapping(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** Rewrites deprecated keys in the raw config (before validation) and returns one warning per key found. */
export function applyDeprecatedKeys(raw: Record<string, unknown>): string[] {
  const warnings: string[] = [];
  for (const { from, to, type } of MOVED) {
    const source = mapping(raw[from[0]]);
    if (source === undefined || !(from[1] in source)) continue;
    const oldName = from.join('.');
    const newName = to.join('.');
    const value = source[from[1]];
    if (typeof value !== type) throw ConfigError.single(oldName, `must be a ${type} (deprecated name of ${newName})`, `set ${newName} instead and remove ${oldName}`);
    const target = mapping(raw[to[0]]) ?? {};
    if (to[1] in target && target[to[1]] !== value) {
      throw ConfigError.single(oldName, `conflicts with ${newName} (${String(target[to[1]])})`, `remove ${oldName}: ${newName} is the one switch`);
    }
    const { [from[1]]: _moved, ...rest } = source;
    raw[from[0]] = rest;
    raw[to[0]] = { ...target, [to[1]]: value };
    warnings.push(`${oldName} is deprecated and will be removed in the next release; it is read as ${newName}. Move it there.`);
  }
  return warnings;
}
