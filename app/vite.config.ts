import { svelte } from "@sveltejs/vite-plugin-svelte";
import { defineConfig } from "vite";

// The build goes into the Python package (served at / by openlms.server.webapp, carried by the wheel).
// `npm run dev` proxies the APIs to a running `lms server start` (OPENLMS_URL, default port 1234).
const api = process.env.OPENLMS_URL ?? "http://127.0.0.1:1234";
// OPENLMS_APP_OUT builds elsewhere (serve it with OPENLMS_APP_DIR=<that folder>), e.g. to try a change
// without touching the package's copy.
const outDir = process.env.OPENLMS_APP_OUT ?? "../src/openlms/webapp/static";

export default defineConfig({
  plugins: [svelte()],
  base: "/",
  build: {
    outDir,
    emptyOutDir: true,
    assetsDir: "assets",
    // no inline <script> or data: modules: the server's Content-Security-Policy is script-src 'self'
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    target: "es2022",
    // one ~0.5 MB script (marked, DOMPurify, highlight.js's common languages) served from this computer:
    // splitting it would add requests without making the first page faster
    chunkSizeWarningLimit: 1024,
  },
  server: {
    proxy: { "/v1": api, "/api": api },
  },
});
