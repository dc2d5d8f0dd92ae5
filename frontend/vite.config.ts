import { contractSourceAliases } from '../contract/source-aliases.js';
import { fileURLToPath } from 'node:url';
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
  // The operations dashboard is a second page, served at /admin/ when ADMIN_ENABLED=true.
  build: {
    outDir: 'dist-demo',
    emptyOutDir: true,
    target: 'es2022',
    rollupOptions: {
      input: {
        demo: fileURLToPath(new URL('./index.html', import.meta.url)),
        admin: fileURLToPath(new URL('./admin/index.html', import.meta.url)),
      },
    },
  },
});
