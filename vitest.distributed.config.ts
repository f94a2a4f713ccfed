import { defineConfig } from 'vitest/config';

// Distributed suite: real Redis and PostgreSQL. Fails (never skips) when they cannot be reached.
export default defineConfig({
  test: {
    include: ['test/distributed/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
