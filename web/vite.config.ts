// Builds the web console into web/dist, which vmhostd serves (src/web/static-files.ts).
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // noVNC uses top-level await (its H.264 probe), so the bundle targets ES2022.
    target: 'es2022',
    chunkSizeWarningLimit: 1024,
  },
});
