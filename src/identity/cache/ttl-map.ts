/**
 * A bounded map of values with a fresh-until and a stale-until time. Fresh entries are served;
 * stale ones only when the record store cannot be reached (see IdentityCache). Insertion order
 * doubles as eviction order: the oldest entry goes first when the bound is reached.
 */
export interface TtlEntry<V> {
  value: V;
  freshUntil: number;
  staleUntil: number;
}

export class TtlMap<V> {
  private readonly entries = new Map<string, TtlEntry<V>>();

  constructor(private readonly maxEntries: number) {}

  get(key: string): TtlEntry<V> | undefined {
    return this.entries.get(key);
  }

  set(key: string, entry: TtlEntry<V>): void {
    // Re-inserting moves the key to the young end, so hot keys are evicted last.
    this.entries.delete(key);
    this.entries.set(key, entry);
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
