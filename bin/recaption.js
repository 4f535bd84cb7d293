#!/usr/bin/env node
// Runs the TypeScript CLI through tsx's CommonJS hook (no build step between an edit and a run).
require('tsx/cjs');
require('../cli/main.ts').main(process.argv);
