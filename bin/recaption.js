#!/usr/bin/env node
// libuv's pool (4 threads by default) runs sharp's decode + resize: size it to the machine so a GPU worker's
// look-ahead batch is decoded on every core. Must be set before the pool's first use; a user's value wins.
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, require('node:os').availableParallelism()));
// Runs the TypeScript CLI through tsx's CommonJS hook (no build step between an edit and a run).
require('tsx/cjs');
require('../cli/main.ts').main(process.argv);
