import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` proxies gRPC-web, the login and health to a running host's HTTPS listener
// (QUANTIX_HTTP, default the demo's host1), so the dev server behaves like the leader. The
// host's certificate is the cluster's own CA's (`secure: false`), and the Host header stays
// the dev server's, which the host compares with the Origin of calls made with the session
// cookie.
const target = process.env.QUANTIX_HTTP ?? "https://127.0.0.1:7481";
const toHost = { target, changeOrigin: false, secure: false };

export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 1024 },
  server: {
    proxy: Object.fromEntries(
      ["/quantix.v1.", "/healthz", "/session", "/login", "/logout"].map((p) => [p, toHost]),
    ),
  },
});
