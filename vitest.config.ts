import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests share the real PostgreSQL/MariaDB and listen on ports: run files one at a time.
    fileParallelism: false,
  },
});
