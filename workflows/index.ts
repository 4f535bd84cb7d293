/** Every workflow the cpu worker registers. Deterministic code only: no I/O, no lib/ runtime imports. */
export { recaptionRun, runProgressQuery } from './run';
export { shardPageWorkflow, pageProgressQuery } from './page';
