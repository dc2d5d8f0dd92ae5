import { contractSourceAliases } from '../contract/source-aliases.js';
import { defineConfig } from 'vite';

// In development the gateway runs separately (npm run dev); the Vite server proxies
// to it so the demo talks to one origin, exactly as it does when the gateway serves it.
const gateway = process.env.GATEWAY_URL ?? 'http://127.0.0.1:3000';

export default defineConfig({
  resolve: {
    alias: contractSourceAliases,
  },
  server: {
    host: '0.0.0.0',
    port: 5173,
    proxy: {
      '/api': gateway,
      '/socket.io': { target: gateway, ws: true },
      '/healthz': gateway,
      '/readyz': gateway,
    },
  },
  // dist/ is the published SDK (tsconfig.sdk.json); the demo app has a folder of its own.
  build: {
    outDir: 'dist-demo',
    emptyOutDir: true,
    target: 'es2022',
  },
});
