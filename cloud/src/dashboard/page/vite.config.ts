// Vite builds the page from this folder; build.ts passes the output folder. Relative asset paths, no
// inlined remote anything: the built page loads only files the dashboard serves itself.
export default {
  base: './',
  publicDir: 'public',
  clearScreen: false,
  build: { target: 'es2022', assetsInlineLimit: 0, sourcemap: false, reportCompressedSize: false },
};
