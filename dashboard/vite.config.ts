import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// Served by the API at /dashboard/ (src/backplane/... serves dist/ with an SPA fallback). In development,
// `npm run dev` proxies the API routes to a local `make run` on port 8000.
export default defineConfig({
  base: "/dashboard/",
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 600 },
  server: {
    proxy: {
      "/v1": "http://127.0.0.1:8000",
      "/api": "http://127.0.0.1:8000",
    },
  },
});
