import { defineConfig } from 'vite';

// The app is served from the Tauri bundle, never from a remote origin: relative asset paths, no
// external URLs, and nothing inlined into index.html (the CSP allows scripts and styles only from
// 'self').
export default defineConfig({
  base: './',
  clearScreen: false,
  server: {
    port: 5173,
    strictPort: true,
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2020',
    // Keep every asset a file of its own: an inlined data: script or stylesheet would break the CSP.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
});
