// Entry of a preprocessing thread (lib/pipeline/prep-pool.ts). A worker thread starts as plain Node whatever loaded
// its parent (tsx for the CLI and the bench, @swc/jest under jest), so it registers tsx's CommonJS hook itself, as
// bin/recaption.js does, and then loads the TypeScript module. In a build (tsc's dist/, the GPU kit's esbuild
// bundle) this name is prep-worker.ts compiled, so prep-pool.ts finds the thread's code at the same path, tsx-free.
require('tsx/cjs');
module.exports = require('./prep-worker.ts');
