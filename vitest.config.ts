import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Source, not dist: tests and the dev server need no contract build.
    alias: [
      {
        find: /^@switchboard\/contract\/schemas$/,
        replacement: fileURLToPath(new URL('./contract/src/schemas.ts', import.meta.url)),
      },
      {
        find: /^@switchboard\/contract$/,
        replacement: fileURLToPath(new URL('./contract/src/index.ts', import.meta.url)),
      },
    ],
  },
  test: {
    include: ['**/test/**/*.test.ts', 'e2e/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    // Suites start real redis-server and gateway processes; two cores run two files at once.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    reporters: ['default'],
  },
});
