import { defineConfig } from "vite";
import vue from "@vitejs/plugin-vue";

// In development (`npm run dev`) the API lives on the chat app; the built files are served by it.
const appOrigin = process.env.CHAT_APP_ORIGIN ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [vue()],
  server: {
    proxy: {
      "/api": appOrigin,
      "/broadcasting": appOrigin,
    },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 600,
  },
});
