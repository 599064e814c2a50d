import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

/**
 * Two entries: the page (index.html, hashed assets under assets/) and the service worker, which
 * must keep a fixed name at the root of dist (`/sw.js`): a worker's URL is its identity and its
 * scope is the folder it is served from.
 */
export default defineConfig({
  plugins: [preact()],
  base: '/',
  // `npm run dev -w @parley/web`: the page from Vite, everything under /v1 from a Parley server
  // on its default port (start it with `PARLEY_DEV_TOKENS=true` or in development mode).
  server: {
    proxy: { '/v1': { target: process.env.PARLEY_URL ?? 'http://127.0.0.1:8080', ws: true } },
  },
  build: {
    target: 'es2022',
    // The server's CSP has no 'unsafe-inline': never inline scripts or styles into index.html.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    rollupOptions: {
      input: { main: 'index.html', sw: 'src/sw.ts' },
      output: {
        entryFileNames: (chunk) => (chunk.name === 'sw' ? 'sw.js' : 'assets/[name]-[hash].js'),
      },
    },
  },
});
