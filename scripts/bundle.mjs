/**
 * Bundles the compiled `portcullis` command (dist/src/cli/main.js) into dist/portcullis/, which is
 * what `npm start` and the `portcullis` bin run. Why: V8 keeps the source text of every module it
 * loads for as long as the process lives, and most of the gateway's dependencies ship sources with
 * a few non-ASCII characters, which V8 stores two bytes per character. One ASCII-only bundle with
 * the whitespace taken out holds the same code in well under half the memory (bench/README.md,
 * ninth pass), and loads only what is imported. Identifiers are not minified, so stack traces read
 * as in the sources. Names are not pinned either (esbuild's keepNames): it wraps every function
 * expression in a call that redefines its name, closures made per request included, which cost
 * 40 % more CPU per call through the gateway; a function renamed to resolve a clash between modules
 * (a `2` appended) is the price.
 *
 * Left outside the bundle: PGlite (it finds its WebAssembly and data files next to its own
 * modules), argon2 (a native addon) and pg's optional native binding. The lazily imported
 * deployments (PostgreSQL, Redis) stay separate chunks, loaded only by the deployment that uses them.
 */
import { build } from 'esbuild';

await build({
  entryPoints: { main: 'dist/src/cli/main.js' },
  outdir: 'dist/portcullis',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  charset: 'ascii',
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  external: ['@electric-sql/pglite', 'argon2', 'pg-native'],
  // CommonJS dependencies inside an ES module bundle still call require() for Node's built-ins.
  banner: { js: "import { createRequire as __portcullisRequire } from 'node:module'; const require = __portcullisRequire(import.meta.url);" },
  logLevel: 'warning',
});
