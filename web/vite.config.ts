import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` proxies gRPC-web and health to a running host's HTTP listener
// (QUANTIX_HTTP, default the demo's host1), so the dev server behaves like the leader.
const target = process.env.QUANTIX_HTTP ?? "http://127.0.0.1:7481";

export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 1024 },
  server: { proxy: { "/quantix.v1.": target, "/healthz": target } },
});
