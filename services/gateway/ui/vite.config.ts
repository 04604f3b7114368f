import { defineConfig } from "vite";
import vue from "@vitejs/plugin-vue";

// Built into dist/, which the gateway serves at / (waybill_gateway/web_ui.py).
// `npm run dev` proxies the API to a gateway on :8000.
export default defineConfig({
  plugins: [vue()],
  build: { outDir: "dist", emptyOutDir: true, assetsInlineLimit: 0 },
  server: {
    proxy: { "/api": "http://127.0.0.1:8000" },
  },
});
