import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The CLI and broker processes tests spawn run the compiled build (dist/): it is made current first.
    globalSetup: ['test/support/build.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests share the real PostgreSQL/MariaDB and listen on ports: run files one at a time.
    fileParallelism: false,
  },
});
