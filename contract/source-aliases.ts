import { fileURLToPath } from 'node:url';

/** Resolves the contract to its TypeScript source, so tests and the Vite dev server need no contract build. */
export const contractSourceAliases = [
  {
    find: /^@switchboard\/contract\/schemas$/,
    replacement: fileURLToPath(new URL('./src/schemas.ts', import.meta.url)),
  },
  { find: /^@switchboard\/contract$/, replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
];
