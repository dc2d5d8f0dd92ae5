import { contractSourceAliases } from './contract/source-aliases.js';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    alias: contractSourceAliases,
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
